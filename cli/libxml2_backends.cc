// libxml2_backends.cc - the two shared libraries libxml2 can call into, loaded the first time it does, for
// the `chainmail` command that links libxml2 in (CHAINMAIL_STATIC_COMMAND, cli/CMakeLists.txt).
//
// Debian's libxml2.a calls ICU for the few encodings glibc's iconv does not know (SCSU, BOCU-1 and the like;
// encoding.c: ucnv_open() and six more), and libm from XPath and the schema types (floor, fmod, log10, pow),
// which a DMARC report never reaches. Linked as they were, every start paid for both: ICU's archives made the
// command a 36 MB file with 8 more pages copied on write for their relocations, and libm.so.6 was loaded and
// relocated by the dynamic loader; about 0.45 ms of a 9.5 ms run on the 1 MB report (docs/dmarc.md). The
// link now sends libxml2's references to those functions here (ld --wrap=SYMBOL turns a reference to SYMBOL
// into one to __wrap_SYMBOL) and leaves ICU's archives and libm out; each function below opens the shared
// library (the one Debian's shared libxml2 uses) and finds the real function once, then calls it.
//
// When a library cannot be opened: ucnv_open() fails with U_FILE_ACCESS_ERROR (libxml2 then reports the
// encoding as unsupported, as for any other), and the maths functions return NaN. The other ICU functions
// are only ever called with a converter that ucnv_open() returned, so ICU is loaded by then.
#include <dlfcn.h>
#include <unicode/ucnv.h>
#include <unicode/ucnv_err.h>
#include <unicode/uvernum.h>

#include <cstdlib>
#include <limits>

// Every ICU function has its version in its linked name (ICU's headers define ucnv_open as ucnv_open_72): the
// wrappers' names and the names looked up carry the suffix of the ICU whose headers (and whose build of
// Debian's libxml2.a) these are.
#define CHAINMAIL_ICU_WRAP(name) U_DEF2_ICU_ENTRY_POINT_RENAME(__wrap_##name, U_ICU_VERSION_SUFFIX)
#define CHAINMAIL_STRING2(x) #x
#define CHAINMAIL_STRING(x) CHAINMAIL_STRING2(x)

namespace {

void* open_library(const char* soname) noexcept {
  // RTLD_LOCAL: nothing else in the process binds to what it defines.
  return dlopen(soname, RTLD_NOW | RTLD_LOCAL);
}

void* icu_library() noexcept {
  static void* const handle = open_library("libicuuc.so." U_ICU_VERSION_SHORT);
  return handle;
}

void* libm_library() noexcept {
  static void* const handle = open_library("libm.so.6");
  return handle;
}

// The function `name` of the library, as the type of the declaration F it stands for; null when either is
// missing.
template <typename F>
F* find(void* library, const char* name) noexcept {
  return library == nullptr ? nullptr : reinterpret_cast<F*>(dlsym(library, name));
}

// The real ICU function named by the macro argument, typed by its declaration in ICU's header.
#define CHAINMAIL_ICU_REAL(name) find<decltype(name)>(icu_library(), CHAINMAIL_STRING(name))

// Only reached with a converter ucnv_open() gave, so ICU is loaded; a missing function means a broken ICU.
template <typename F>
F* required(F* f) noexcept {
  if (f == nullptr) std::abort();
  return f;
}

double not_a_number() noexcept {
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

// The names are ld's: --wrap=SYMBOL sends references to __wrap_SYMBOL.
// NOLINTBEGIN(bugprone-reserved-identifier)
extern "C" {

// libxml2 passes ICU's STOP callbacks to ucnv_setToUCallBack() and ucnv_setFromUCallBack(); the wrapped
// setters below hand ICU its own functions instead, so ICU sees the pointers it knows. These stand for them
// in libxml2's references and forward to them should anything call them.
void CHAINMAIL_ICU_WRAP(UCNV_TO_U_CALLBACK_STOP)(const void* context, UConverterToUnicodeArgs* args,
                                                 const char* code_units, int32_t length,
                                                 UConverterCallbackReason reason, UErrorCode* error) {
  static auto* const real = required(CHAINMAIL_ICU_REAL(UCNV_TO_U_CALLBACK_STOP));
  real(context, args, code_units, length, reason, error);
}

void CHAINMAIL_ICU_WRAP(UCNV_FROM_U_CALLBACK_STOP)(const void* context, UConverterFromUnicodeArgs* args,
                                                   const UChar* code_units, int32_t length,
                                                   UChar32 code_point, UConverterCallbackReason reason,
                                                   UErrorCode* error) {
  static auto* const real = required(CHAINMAIL_ICU_REAL(UCNV_FROM_U_CALLBACK_STOP));
  real(context, args, code_units, length, code_point, reason, error);
}

UConverter* CHAINMAIL_ICU_WRAP(ucnv_open)(const char* name, UErrorCode* error) {
  static auto* const real = CHAINMAIL_ICU_REAL(ucnv_open);
  if (real == nullptr) {
    *error = U_FILE_ACCESS_ERROR;
    return nullptr;
  }
  return real(name, error);
}

void CHAINMAIL_ICU_WRAP(ucnv_close)(UConverter* converter) {
  static auto* const real = required(CHAINMAIL_ICU_REAL(ucnv_close));
  real(converter);
}

void CHAINMAIL_ICU_WRAP(ucnv_setToUCallBack)(UConverter* converter, UConverterToUCallback action,
                                             const void* context, UConverterToUCallback* old_action,
                                             const void** old_context, UErrorCode* error) {
  static auto* const real = required(CHAINMAIL_ICU_REAL(ucnv_setToUCallBack));
  static auto* const stop = required(CHAINMAIL_ICU_REAL(UCNV_TO_U_CALLBACK_STOP));
  if (action == &CHAINMAIL_ICU_WRAP(UCNV_TO_U_CALLBACK_STOP)) action = stop;
  real(converter, action, context, old_action, old_context, error);
}

void CHAINMAIL_ICU_WRAP(ucnv_setFromUCallBack)(UConverter* converter, UConverterFromUCallback action,
                                               const void* context, UConverterFromUCallback* old_action,
                                               const void** old_context, UErrorCode* error) {
  static auto* const real = required(CHAINMAIL_ICU_REAL(ucnv_setFromUCallBack));
  static auto* const stop = required(CHAINMAIL_ICU_REAL(UCNV_FROM_U_CALLBACK_STOP));
  if (action == &CHAINMAIL_ICU_WRAP(UCNV_FROM_U_CALLBACK_STOP)) action = stop;
  real(converter, action, context, old_action, old_context, error);
}

void CHAINMAIL_ICU_WRAP(ucnv_convertEx)(UConverter* target_converter, UConverter* source_converter,
                                        char** target, const char* target_limit, const char** source,
                                        const char* source_limit, UChar* pivot_start, UChar** pivot_source,
                                        UChar** pivot_target, const UChar* pivot_limit, UBool reset,
                                        UBool flush, UErrorCode* error) {
  static auto* const real = required(CHAINMAIL_ICU_REAL(ucnv_convertEx));
  real(target_converter, source_converter, target, target_limit, source, source_limit, pivot_start,
       pivot_source, pivot_target, pivot_limit, reset, flush, error);
}

double __wrap_floor(double x) {
  static auto* const real = find<double(double)>(libm_library(), "floor");
  return real == nullptr ? not_a_number() : real(x);
}

double __wrap_fmod(double x, double y) {
  static auto* const real = find<double(double, double)>(libm_library(), "fmod");
  return real == nullptr ? not_a_number() : real(x, y);
}

double __wrap_log(double x) {
  static auto* const real = find<double(double)>(libm_library(), "log");
  return real == nullptr ? not_a_number() : real(x);
}

double __wrap_log10(double x) {
  static auto* const real = find<double(double)>(libm_library(), "log10");
  return real == nullptr ? not_a_number() : real(x);
}

double __wrap_modf(double x, double* integral) {
  static auto* const real = find<double(double, double*)>(libm_library(), "modf");
  if (real != nullptr) return real(x, integral);
  *integral = not_a_number();
  return not_a_number();
}

double __wrap_pow(double x, double y) {
  static auto* const real = find<double(double, double)>(libm_library(), "pow");
  return real == nullptr ? not_a_number() : real(x, y);
}

}  // extern "C"
// NOLINTEND(bugprone-reserved-identifier)
