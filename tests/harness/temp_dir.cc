// temp_dir.cc: see temp_dir.h.
#include "harness/temp_dir.h"

#include <stdlib.h>  // mkdtemp (POSIX)

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <string>
#include <system_error>
#include <utility>

namespace chainmail::harness {

TempDir::TempDir(std::string_view tag) {
  std::string pattern = "/tmp/chainmail-" + std::string(tag) + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  remove();
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

void TempDir::remove() noexcept {
  if (path_.empty()) return;
  if (std::getenv("CHAINMAIL_KEEP_TMP") != nullptr) {
    std::cerr << "harness: keeping " << path_.string() << " (CHAINMAIL_KEEP_TMP)\n";
  } else {
    std::error_code ignored;  // Best effort: a destructor must not throw, and a leftover in /tmp is harmless.
    std::filesystem::remove_all(path_, ignored);
  }
  path_.clear();
}

}  // namespace chainmail::harness
