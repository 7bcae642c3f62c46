// directory_commands.h - the `chainmail` subcommands that need the directory (OpenLDAP): route and
// socketmap. They are built into the module chainmail-directory and reached through module_loader.h, so
// that the other subcommands start without loading OpenLDAP, Cyrus SASL and GnuTLS.
//
// Each entry point returns the command's exit status (sysexits(3); see main.cc) and prints its own errors.
#pragma once

#include <string>
#include <vector>

namespace chainmail {

struct RouteCommand {
  std::string config_path;
  std::vector<std::string> addresses;
  bool json = false;
  bool stats = false;  // directory round trips and cache use to stderr
};

struct SocketmapCommand {
  std::string config_path;
  std::string listen;  // overrides socketmap.listen when not empty
};

}  // namespace chainmail

// C linkage, so that they can be found by name in the module.
extern "C" int chainmail_route_command(const chainmail::RouteCommand* command) noexcept;
extern "C" int chainmail_socketmap_command(const chainmail::SocketmapCommand* command) noexcept;
