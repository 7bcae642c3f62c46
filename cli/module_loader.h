// module_loader.h - finds a symbol in one of chainmail's own loadable modules (lib/chainmail/<name>.so).
//
// Why modules: the `chainmail` command starts on every call, and starting is dominated by the dynamic
// linker mapping and relocating shared libraries. The directory commands (route, socketmap) need OpenLDAP,
// Cyrus SASL and GnuTLS; reading mail messages needs GMime, GLib and GPGME; gzip and zip reports need
// libarchive and its seven libraries. Linked into the command, they would cost every `chainmail dmarc
// report.xml` and `chainmail config check` their start-up (about 11 ms here, more than the rest of the
// run). So they live in modules loaded the first time they are needed: chainmail-directory, chainmail-mime
// and chainmail-archive.
//
// Where: <directory of the running executable>/../lib/chainmail/<name>.so, i.e. next to bin/ in the build
// tree or the installation prefix; never a search path, so no other file can be loaded in its place.
//
// DIAGNOSTICS: a module that cannot be loaded gives nullptr and a reason naming the file (dlerror's text).
#pragma once

#include <string>
#include <string_view>

namespace chainmail {

// The address of `symbol` in module `name` (loaded once, never unloaded); nullptr and `why` otherwise.
// Thread-safe.
void* module_symbol(std::string_view name, const char* symbol, std::string& why);

// module_symbol() as a pointer to a function of type F: the caller names the entry point's declared type
// (decltype of its declaration in the module's header), so that its call is checked against it, and the
// one conversion from a data pointer to a function pointer (which dlsym(3) guarantees on POSIX) is here.
template <typename F>
F* module_function(std::string_view name, const char* symbol, std::string& why) {
  return reinterpret_cast<F*>(module_symbol(name, symbol, why));
}

}  // namespace chainmail
