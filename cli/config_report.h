// config_report.h - chainmail.conf loaded for a `chainmail` subcommand, its errors printed to stderr.
// Shared by the command itself and its modules (module_loader.h).
#pragma once

#include <iostream>
#include <optional>
#include <string>

#include "adapters/config_loader.h"

namespace chainmail {

inline std::optional<Config> load_config_or_report(const std::string& path) {
  auto loaded = load_config_file(path);
  for (const auto& e : loaded.errors) std::cerr << "chainmail: " << e << "\n";
  if (!loaded.ok()) return std::nullopt;
  return std::move(loaded.config);
}

}  // namespace chainmail
