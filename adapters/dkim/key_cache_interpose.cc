// key_cache_interpose.cc - d2i_PUBKEY_bio() answered from the process's PublicKeyCache (key_cache.h).
//
// Linked into an executable (never into a library), this definition takes the place of libcrypto's for every
// caller that binds it dynamically, libopendkim among them: an unversioned definition in the executable
// satisfies libopendkim's d2i_PUBKEY_bio@OPENSSL_3.0.0 reference, as milter/libmilter_signals.cc does for
// sigwait(). Only the exact call libopendkim makes is cached: a memory BIO and no output pointer
// (d2i_PUBKEY_bio(BIO_new_mem_buf(der, len), NULL)). Every other call, and any internal trouble, goes to
// libcrypto's own function unchanged, so the behaviour is OpenSSL's in every case; only the cost differs.
#include <dlfcn.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include <string_view>

#include "adapters/dkim/key_cache.h"

namespace {

using D2iPubkeyBio = EVP_PKEY* (*)(BIO*, EVP_PKEY**);

D2iPubkeyBio real_d2i_pubkey_bio() {
  // The version libcrypto 3 defines it under; dlsym() as the fallback for a libcrypto without versions.
  static const auto fn = [] {
    void* sym = dlvsym(RTLD_NEXT, "d2i_PUBKEY_bio", "OPENSSL_3.0.0");
    if (sym == nullptr) sym = dlsym(RTLD_NEXT, "d2i_PUBKEY_bio");
    return reinterpret_cast<D2iPubkeyBio>(sym);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
  }();
  return fn;
}

}  // namespace

extern "C" EVP_PKEY* d2i_PUBKEY_bio(BIO* bp, EVP_PKEY** a) {
  const D2iPubkeyBio real = real_d2i_pubkey_bio();
  if (real == nullptr) return nullptr;  // cannot happen with libcrypto loaded; fail as a bad key would
  if (a != nullptr || bp == nullptr || BIO_method_type(bp) != BIO_TYPE_MEM) return real(bp, a);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bp, &data);  // NOLINT(google-runtime-int): OpenSSL's type
  if (len <= 0 || data == nullptr) return real(bp, a);
  try {
    return chainmail::dkim::process_key_cache().get(std::string_view(data, static_cast<std::size_t>(len)),
                                                    [&] { return real(bp, a); });
  } catch (...) {  // out of memory in the cache: decode as if there were none
    return real(bp, a);
  }
}
