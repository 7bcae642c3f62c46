// temp_dir.h: a private scratch folder per test object, removed with it.
//
// TempDir dir("slapd");   // /tmp/chainmail-slapd-XXXXXX, mode 0700 (mkdtemp)
// dir.path() / "db"
//
// Set CHAINMAIL_KEEP_TMP=1 to keep every folder for post-mortem reading (its path is printed to stderr).
#pragma once

#include <filesystem>
#include <string_view>

namespace chainmail::harness {

class TempDir {
 public:
  // Throws std::system_error when mkdtemp fails.
  explicit TempDir(std::string_view tag = "tmp");
  ~TempDir();

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;

  const std::filesystem::path& path() const { return path_; }

 private:
  void remove() noexcept;

  std::filesystem::path path_;  // Empty once moved from.
};

}  // namespace chainmail::harness
