// config_loader.h - reads chainmail.conf (TOML, toml++) into a Config through the parameter table.
//
// Every error is reported, each with its file and line: syntax, unknown keys (a typo must not silently
// become a default), wrong types, values out of bounds, and validate()'s cross-checks. Secrets can come from
// files (directory.bind_password_file); relative paths are relative to the configuration file.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"

namespace chainmail {

struct LoadedConfig {
  Config config;
  std::vector<std::string> errors;  // "FILE:LINE: key: message"; empty when the file is good
  bool ok() const { return errors.empty(); }
};

LoadedConfig load_config_file(const std::filesystem::path& file);
LoadedConfig load_config_text(std::string_view text, const std::string& name,
                              const std::filesystem::path& base_dir);

// Every parameter with its default and help, as a commented TOML file (`chainmail config defaults`).
std::string render_defaults();

}  // namespace chainmail
