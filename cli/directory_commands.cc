// directory_commands.cc - see directory_commands.h: `chainmail route` and `chainmail socketmap`.
#include "cli/directory_commands.h"

#include <signal.h>
#include <sysexits.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>

#include "adapters/directory_factory.h"
#include "adapters/socketmap_server.h"
#include "cli/config_report.h"
#include "cli/route_report.h"
#include "core/route_format.h"
#include "core/router.h"
#include "core/senders.h"

namespace {

using chainmail::Config;

int cmd_route(const std::string& config_path, const std::vector<std::string>& addresses, bool json,
              bool stats) {
  const auto config = chainmail::load_config_or_report(config_path);
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
  auto config = chainmail::load_config_or_report(config_path);
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
  // Built piecewise: GCC 12 warns (-Wrestrict, falsely) on " " + std::string(...).
  line += ' ';
  line += chainmail::sanitize(key.substr(0, 320));
  line += ": ";
  line += reply;
  line += '\n';
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

// Exported from the module; the rest of it is hidden (CMake: visibility hidden, --exclude-libs).
extern "C" __attribute__((visibility("default"))) int chainmail_route_command(
    const chainmail::RouteCommand* command) noexcept {
  try {
    return cmd_route(command->config_path, command->addresses, command->json, command->stats);
  } catch (const std::exception& e) {
    std::cerr << "chainmail: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "chainmail: route failed\n";
  }
  return EX_SOFTWARE;
}

extern "C" __attribute__((visibility("default"))) int chainmail_socketmap_command(
    const chainmail::SocketmapCommand* command) noexcept {
  try {
    return cmd_socketmap(command->config_path, command->listen);
  } catch (const std::exception& e) {
    std::cerr << "chainmail: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "chainmail: socketmap failed\n";
  }
  return EX_SOFTWARE;
}
