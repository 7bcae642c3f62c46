// chainmail - the admin command.
//
//   chainmail route [--config FILE] [--json] [--stats] ADDRESS...   where each address routes, and why
//   chainmail config defaults                                       every parameter with default and help
//   chainmail config check FILE                                     every error of a configuration file
//   chainmail socketmap [--config FILE] [--listen SPEC]              serve Postfix's socketmap maps "route",
//   "senders"
//
// Exit status follows sysexits(3) where it matters to scripts: 75 temporary trouble (try again), 78
// configuration error, 64 usage; for route also 1 when some address is not routed.
#include <signal.h>
#include <sysexits.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>

#include "adapters/config_loader.h"
#include "adapters/directory_factory.h"
#include "adapters/socketmap_server.h"
#include "cli/route_report.h"
#include "core/route_format.h"
#include "core/router.h"
#include "core/senders.h"

namespace {

using chainmail::Config;

std::string default_config_path() {
  const char* env = std::getenv("CHAINMAIL_CONFIG");
  return env != nullptr && *env != '\0' ? env : "/etc/chainmail/chainmail.conf";
}

std::optional<Config> load_or_report(const std::string& path) {
  auto loaded = chainmail::load_config_file(path);
  for (const auto& e : loaded.errors) std::cerr << "chainmail: " << e << "\n";
  if (!loaded.ok()) return std::nullopt;
  return std::move(loaded.config);
}

int cmd_route(const std::string& config_path, const std::vector<std::string>& addresses, bool json,
              bool stats) {
  const auto config = load_or_report(config_path);
  if (!config) return EX_CONFIG;
  std::optional<chainmail::DirectoryStack> stack;
  try {
    stack.emplace(*config);
  } catch (const std::exception& e) {
    std::cerr << "chainmail: " << e.what() << "\n";
    return EX_CONFIG;
  }
  const chainmail::Router router(*config, stack->directory());
  std::vector<chainmail::RouteResult> results;
  results.reserve(addresses.size());
  for (const auto& a : addresses) results.push_back(router.route(a));

  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : results) out.push_back(chainmail::to_json(r));
    std::cout << out.dump(2) << "\n";
  } else {
    for (const auto& r : results) std::cout << chainmail::render_text(r);
  }
  if (stats) {
    std::cerr << "stats:";
    if (auto* ldap = stack->ldap()) std::cerr << " ldap_round_trips=" << ldap->round_trips();
    if (auto* cache = stack->cache())
      std::cerr << " cache_hits=" << cache->hits() << " cache_misses=" << cache->misses();
    std::cerr << "\n";
  }
  return chainmail::route_exit_status(results);
}

int cmd_config_check(const std::string& path) {
  const auto loaded = chainmail::load_config_file(path);
  for (const auto& e : loaded.errors) std::cout << e << "\n";
  if (!loaded.ok()) return EX_CONFIG;
  std::cout << path << ": ok\n";
  return 0;
}

// Everything a lookup needs, built from one configuration. SIGHUP builds a new one and swaps it in; lookups
// in progress finish on the one they started with (they hold a shared_ptr to it).
struct Runtime {
  Config config;
  chainmail::DirectoryStack directory;
  chainmail::Router router;

  explicit Runtime(Config c)
      : config(std::move(c)), directory(config), router(config, directory.directory()) {}
};

std::shared_ptr<const Runtime> make_runtime(const std::string& config_path, const std::string& listen) {
  auto config = load_or_report(config_path);
  if (!config) return nullptr;
  if (!listen.empty()) config->socketmap.listen = listen;
  try {
    return std::make_shared<const Runtime>(std::move(*config));
  } catch (const std::exception& e) {
    std::cerr << "chainmail: " << e.what() << "\n";
    return nullptr;
  }
}

// One line per trouble answer: the operator must learn that mail is waiting, and why. Keys are truncated and
// sanitized; one fputs keeps concurrent lines whole.
void log_trouble(std::string_view map, std::string_view key, const std::string& reply) {
  std::string line = "chainmail: socketmap: ";
  line += map;
  line += " " + chainmail::sanitize(key.substr(0, 320)) + ": " + reply + "\n";
  std::fputs(line.c_str(), stderr);
}

int cmd_socketmap(const std::string& config_path, const std::string& listen) {
  std::shared_ptr<const Runtime> runtime = make_runtime(config_path, listen);
  if (!runtime) return EX_CONFIG;
  std::mutex runtime_mutex;
  auto current = [&] {
    const std::lock_guard lock(runtime_mutex);
    return runtime;
  };

  // Signals are taken by sigwait() below, in this thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const auto sm = runtime->config.socketmap;  // a copy: a reload replaces runtime
  chainmail::SocketmapServer server(
      {sm.listen, static_cast<std::size_t>(sm.max_request), static_cast<std::size_t>(sm.max_reply),
       std::chrono::milliseconds(sm.idle_timeout_ms), static_cast<std::size_t>(sm.max_clients)},
      [&current](std::string_view name, std::string_view key) -> std::string {
        const auto rt = current();
        std::string reply;
        if (name == "route") {
          reply = chainmail::socketmap_reply(rt->router.route(key, chainmail::Router::Explain::no));
        } else if (name == "senders") {
          // The stack is const only because the runtime is shared between threads; the router already holds
          // a non-const reference to the same directory, whose implementations are thread-safe.
          chainmail::Directory& directory = const_cast<chainmail::DirectoryStack&>(rt->directory).directory();
          reply = chainmail::senders_socketmap_reply(chainmail::sender_logins(rt->config, directory, key));
        } else {
          return "PERM unknown map (this server answers maps \"route\" and \"senders\")";
        }
        if (reply.rfind("TEMP", 0) == 0) log_trouble(name, key, reply);
        return reply;
      });
  try {
    server.start();
  } catch (const std::exception& e) {
    std::cerr << "chainmail: socketmap: " << e.what() << "\n";
    return EX_UNAVAILABLE;
  }
  std::cerr << "chainmail: socketmap: serving maps \"route\" and \"senders\" on " << sm.listen
            << (server.port() != 0 ? " (port " + std::to_string(server.port()) + ")" : "") << "\n";
  while (true) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig != SIGHUP) {
      std::cerr << "chainmail: socketmap: stopping on signal " << sig << "\n";
      break;
    }
    // Reload: a bad file keeps the running configuration; the listen address needs a restart.
    auto next = make_runtime(config_path, listen);
    if (!next) {
      std::cerr << "chainmail: socketmap: reload failed, keeping the running configuration\n";
      continue;
    }
    if (next->config.socketmap.listen != sm.listen)
      std::cerr << "chainmail: socketmap: socketmap.listen changed; it takes effect on restart\n";
    {
      const std::lock_guard lock(runtime_mutex);
      runtime.swap(next);
    }
    std::cerr << "chainmail: socketmap: configuration reloaded\n";
  }
  server.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chainmail: the mail routing chain, its configuration and its diagnosis"};
  app.require_subcommand(1);
  std::string config_path = default_config_path();

  auto* route = app.add_subcommand("route", "Show where each address routes and which rules decided it");
  std::vector<std::string> addresses;
  bool json = false;
  bool stats = false;
  route->add_option("--config", config_path,
                    "Configuration file (default $CHAINMAIL_CONFIG or /etc/chainmail/chainmail.conf)");
  route->add_flag("--json", json, "Print JSON");
  route->add_flag("--stats", stats, "Print directory round trips and cache use to stderr");
  route->add_option("address", addresses, "Addresses to route")->required();

  auto* config = app.add_subcommand("config", "Configuration: defaults, check");
  config->require_subcommand(1);
  config->add_subcommand("defaults", "Print every parameter with its default, bounds and help");
  auto* check = config->add_subcommand("check", "Report every error of a configuration file, with its line");
  std::string check_path;
  check->add_option("file", check_path, "The file to check")->required();

  auto* socketmap =
      app.add_subcommand("socketmap", "Serve Postfix's socketmap protocol (maps \"route\" and \"senders\")");
  std::string listen;
  socketmap->add_option("--config", config_path, "Configuration file");
  socketmap->add_option("--listen", listen, "inet:HOST:PORT or unix:PATH (default: socketmap.listen)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : EX_USAGE;
  }
  try {
    if (route->parsed()) return cmd_route(config_path, addresses, json, stats);
    if (config->got_subcommand("defaults")) {
      std::cout << chainmail::render_defaults();
      return 0;
    }
    if (check->parsed()) return cmd_config_check(check_path);
    if (socketmap->parsed()) return cmd_socketmap(config_path, listen);
  } catch (const std::exception& e) {
    std::cerr << "chainmail: " << e.what() << "\n";
    return EX_SOFTWARE;
  }
  return EX_USAGE;
}
