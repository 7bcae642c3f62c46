// routing_engine.cc - see routing_engine.h.
#include "adapters/routing_engine.h"

#include <utility>

#include "adapters/config_loader.h"

namespace chainmail {

RoutingEngine::RoutingEngine(std::string p, Config c)
    : path(std::move(p)), config(std::move(c)), stack(config), router(config, stack.directory()) {}

std::unique_ptr<RoutingEngine> RoutingEngine::load(const std::string& path, std::string& error) {
  LoadedConfig loaded = load_config_file(path);
  if (!loaded.ok()) {
    error = "cannot load ";
    error += path;
    error += ": ";
    error += loaded.errors.front();
    return nullptr;
  }
  return std::unique_ptr<RoutingEngine>(new RoutingEngine(path, std::move(loaded.config)));
}

}  // namespace chainmail
