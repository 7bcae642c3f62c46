// postfix.cc: see postfix.h.
#include "harness/postfix.h"

#include <fstream>
#include <stdexcept>
#include <string>

namespace chainmail::harness {

PostfixTools::PostfixTools() : dir_("postfix") {
  // compatibility_level: without it Postfix may log "using backwards-compatible default setting" warnings on
  // stderr, which tests compare. The directories are the Debian defaults, spelled out so that dynamically
  // loaded map types (ldap:, listed in /etc/postfix/dynamicmaps.cf) are found whatever the environment.
  write_file("main.cf",
             "compatibility_level = 3.6\n"
             "meta_directory = /etc/postfix\n"
             "shlib_directory = /usr/lib/postfix\n");
  write_file("master.cf", "");  // postconf warns when it is missing; postmap does not need it.
}

std::filesystem::path PostfixTools::write_file(std::string_view name, std::string_view text) const {
  std::filesystem::path path = dir_.path() / name;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path.string());
  }
  std::filesystem::last_write_time(path,
                                   std::filesystem::file_time_type::clock::now() - std::chrono::minutes(1));
  return path;
}

RunResult PostfixTools::postmap_query(std::string_view key, std::string_view map,
                                      std::chrono::milliseconds timeout) const {
  return run({"postmap", "-c", config_dir().string(), "-q", std::string(key), std::string(map)}, {}, timeout);
}

}  // namespace chainmail::harness
