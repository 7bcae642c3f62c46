// paths.cc: see paths.h.
#include "harness/paths.h"

#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef CHAINMAIL_SOURCE_DIR
#error "chainmail_harness needs CHAINMAIL_SOURCE_DIR (set in tests/harness/CMakeLists.txt)"
#endif
#ifndef CHAINMAIL_BIN_DIR
#error "chainmail_harness needs CHAINMAIL_BIN_DIR (set in tests/harness/CMakeLists.txt)"
#endif

namespace chainmail::harness {

std::filesystem::path source_dir() {
  return CHAINMAIL_SOURCE_DIR;
}

std::filesystem::path build_bin_dir() {
  return CHAINMAIL_BIN_DIR;
}

std::filesystem::path find_program(std::string_view name) {
  if (name.find('/') != std::string_view::npos) return std::filesystem::path(name);
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string_view rest = path;
    while (true) {
      const auto colon = rest.find(':');
      dirs.emplace_back(rest.substr(0, colon));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  dirs.emplace_back("/usr/sbin");
  dirs.emplace_back("/sbin");
  for (const auto& dir : dirs) {
    if (dir.empty()) continue;  // An empty PATH entry means ".": never trust the working directory.
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) return candidate;
  }
  throw std::runtime_error("find_program: " + std::string(name) + " not found in PATH, /usr/sbin or /sbin");
}

}  // namespace chainmail::harness
