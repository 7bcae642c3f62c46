// module_loader.cc - see module_loader.h.
#include "cli/module_loader.h"

#include <dlfcn.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>

namespace chainmail {
namespace {

std::filesystem::path module_directory(std::string& why) {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    why = "cannot find the running executable (/proc/self/exe): " + ec.message();
    return {};
  }
  return exe.parent_path().parent_path() / "lib" / "chainmail";
}

}  // namespace

void* module_symbol(std::string_view name, const char* symbol, std::string& why) {
  static std::mutex mutex;
  static std::map<std::string, void*, std::less<>> handles;
  const std::lock_guard lock(mutex);
  auto it = handles.find(name);
  if (it == handles.end()) {
    const auto dir = module_directory(why);
    if (dir.empty()) return nullptr;
    const auto file = dir / (std::string(name) + ".so");
    // RTLD_LOCAL: the module's own copies of chainmail's libraries stay its own. RTLD_NOW: a missing
    // symbol is an error here, with the file named, not a crash later.
    void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* e = ::dlerror();
      why = e != nullptr ? e : "cannot load " + file.string();
      return nullptr;
    }
    it = handles.emplace(std::string(name), handle).first;
  }
  ::dlerror();
  void* address = ::dlsym(it->second, symbol);
  if (address == nullptr) {
    const char* e = ::dlerror();
    why = std::string(name) + ".so: " + (e != nullptr ? e : std::string("no symbol ") + symbol);
  }
  return address;
}

}  // namespace chainmail
