// postfix.h: Postfix command-line tools against a private configuration folder.
//
//   PostfixTools postfix;
//   RunResult r = postfix.postmap_query("alice@example.org", "ldap:" + cf.string());
//   // r.exit_code: 0 found (r.out is the value), 1 not found, other: error (r.err says why)
//
// Debian installed with "No configuration" has no /etc/postfix/main.cf, and the tools refuse to run without
// one, so every tool gets `-c config_dir()` (HOST-NOTES). main.cf there holds only what the tools need; tests
// may rewrite it or put map files (ldap:/path.cf) beside it, with write_file().
#pragma once

#include <chrono>
#include <filesystem>
#include <string_view>

#include "harness/process.h"
#include "harness/temp_dir.h"

namespace chainmail::harness {

class PostfixTools {
 public:
  PostfixTools();  // Writes main.cf and an empty master.cf into a TempDir.

  const std::filesystem::path& config_dir() const { return dir_.path(); }

  // Writes config_dir()/name (main.cf, a texthash: table, an ldap: .cf) and returns its path. The file's
  // mtime is set a minute back: Postfix (util/load_file.c) re-reads a file changed within the last second,
  // sleeping in between, which costs ~2 s per tool run on a freshly written file.
  std::filesystem::path write_file(std::string_view name, std::string_view text) const;

  // postmap -c config_dir() -q KEY MAP
  RunResult postmap_query(std::string_view key, std::string_view map,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

 private:
  TempDir dir_;
};

}  // namespace chainmail::harness
