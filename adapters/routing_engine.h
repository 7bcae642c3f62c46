// routing_engine.h - chainmail.conf loaded from its file, with the directory and the router built on it: what
// a plugin hosted by another program (the Dovecot LMTP hook, the Sieve extension) needs to route an address.
//
//   std::string error;
//   auto engine = RoutingEngine::load("/etc/chainmail/chainmail.conf", error);   // nullptr: see error
//   engine->router.route(address, Router::Explain::yes);
//
// The router refers to the config and the directory it was built with, so an engine is never moved or
// copied; it lives behind the unique_ptr load() returns.
#pragma once

#include <memory>
#include <string>

#include "adapters/directory_factory.h"
#include "core/config.h"
#include "core/router.h"

namespace chainmail {

class RoutingEngine {
 public:
  // The engine for the configuration file `path`; nullptr with `error` set ("cannot load PATH: first error")
  // when the file cannot be read or is invalid. Throws std::runtime_error when the directory cannot be built
  // (an unreadable LDIF file).
  static std::unique_ptr<RoutingEngine> load(const std::string& path, std::string& error);

  RoutingEngine(const RoutingEngine&) = delete;
  RoutingEngine& operator=(const RoutingEngine&) = delete;

  const std::string path;
  const Config config;
  DirectoryStack stack;
  Router router;

 private:
  RoutingEngine(std::string path, Config config);
};

}  // namespace chainmail
