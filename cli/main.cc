// chainmail - the admin command.
//
//   chainmail route [--config FILE] [--json] [--stats] ADDRESS...   where each address routes, and why
//   chainmail config defaults                                       every parameter with default and help
//   chainmail config check FILE                                     every error of a configuration file
//   chainmail socketmap [--config FILE] [--listen SPEC]              serve Postfix's socketmap maps "route",
//   "senders"
//   chainmail dmarc [--json|--csv] [filters] [PATH...]              DMARC aggregate report summary
//   (docs/dmarc.md)
//
// Exit status follows sysexits(3) where it matters to scripts: 75 temporary trouble (try again), 78
// configuration error, 64 usage; for route also 1 when some address is not routed; for dmarc 1 when some
// file or report was bad (each is named on stderr and skipped; the output covers the rest).
#include <malloc.h>
#include <signal.h>
#include <sysexits.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>

#include "adapters/config_loader.h"
#include "adapters/directory_factory.h"
#include "adapters/socketmap_server.h"
#include "cli/dmarc_input.h"
#include "cli/dmarc_json.h"
#include "cli/route_report.h"
#include "core/dmarc_summary.h"
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

struct DmarcOptions {
  std::string maildir;               // overrides dmarc_reports.maildir
  std::vector<std::string> folders;  // default: dmarc_reports.folder_new
  std::vector<std::string> paths;    // files and directories instead of the Maildir
  std::string since;
  std::string until;
  std::vector<std::string> domains;
  std::vector<std::string> reporters;
  std::string view = "all";
  bool json = false;
  bool csv = false;
  bool resolve = false;
  int resolve_timeout_ms = 2000;
  bool config_given = false;
};

int cmd_dmarc(const std::string& config_path, const DmarcOptions& o) {
  using chainmail::DmarcView;
  // A folder of reports is read one file at a time, each file (and libxml2's copy of it) up to megabytes:
  // glibc would map and unmap every such buffer, and the page faults were a fifth of the parse time. Keep
  // freed memory for the next file instead (the heap stays as large as the largest report, bounded by the
  // decompression cap).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  // Files named on the command line need no configuration unless one is asked for; the Maildir does.
  Config config = chainmail::default_config();
  if (o.config_given || o.paths.empty() || std::filesystem::exists(config_path)) {
    auto loaded = load_or_report(config_path);
    if (!loaded) return EX_CONFIG;
    config = std::move(*loaded);
  }
  chainmail::DmarcFilter filter;
  for (const auto& [text, bound, extra] : {std::tuple{&o.since, &filter.since, std::int64_t{0}},
                                           std::tuple{&o.until, &filter.until, std::int64_t{86399}}}) {
    if (text->empty()) continue;
    const auto day = chainmail::parse_day(*text);
    if (!day) {
      std::cerr << "chainmail: dmarc: not a date (YYYY-MM-DD): " << chainmail::printable(*text) << "\n";
      return EX_USAGE;
    }
    *bound = *day + extra;
  }
  filter.domains = o.domains;
  filter.reporters = o.reporters;
  const DmarcView view = o.view == "reports"   ? DmarcView::Reports
                         : o.view == "sources" ? DmarcView::Sources
                                               : DmarcView::All;

  std::vector<std::filesystem::path> inputs(o.paths.begin(), o.paths.end());
  if (inputs.empty()) {
    const std::string root = o.maildir.empty() ? config.dmarc_reports.maildir : o.maildir;
    if (root.empty()) {
      std::cerr << "chainmail: dmarc: no files named and no Maildir (dmarc_reports.maildir or --maildir)\n";
      return EX_CONFIG;
    }
    const auto folders =
        o.folders.empty() ? std::vector<std::string>{config.dmarc_reports.folder_new} : o.folders;
    for (const auto& f : folders) {
      const auto dir = chainmail::maildir_folder_path(root, f);
      inputs.push_back(dir / "cur");
      inputs.push_back(dir / "new");
    }
  }

  chainmail::ReportReadLimits limits;
  const auto& r = config.dmarc_reports;
  limits.max_file_bytes = static_cast<std::size_t>(r.max_message_bytes);
  limits.archive.max_bytes = static_cast<std::size_t>(r.max_decompressed_bytes);
  limits.archive.max_members = static_cast<std::size_t>(r.max_zip_members);
  limits.parse.max_depth = static_cast<std::size_t>(r.max_xml_depth);

  auto summary_ptr = std::make_unique<chainmail::DmarcSummary>(filter);
  auto& summary = *summary_ptr;
  const auto stats = chainmail::for_each_report(
      inputs, limits,
      [&summary](const std::filesystem::path& /*file*/, const chainmail::AggregateReport& report) {
        summary.add(report);
      },
      [](const std::filesystem::path& file, const std::string& reason) {
        std::cerr << "chainmail: dmarc: " << chainmail::printable(file.string()) << ": "
                  << chainmail::printable(reason.substr(0, 300)) << "\n";
      });

  if (summary.unlisted_reports() > 0 || summary.folded_sources() > 0)
    std::cerr << "chainmail: dmarc: memory limits: " << summary.unlisted_reports()
              << " reports counted but not listed, " << summary.folded_sources()
              << " records counted under source \"(other)\"\n";
  const auto reports = summary.reports();
  auto sources = summary.sources();
  const std::uint64_t messages = summary.messages();
  const std::uint64_t duplicates = summary.duplicates();
  const std::uint64_t filtered = summary.filtered();
  summary_ptr.reset();  // the rows are copied out: free the maps before the output is built
  if (o.resolve && view != DmarcView::Reports) {
    std::map<std::string, std::string> cache;
    std::vector<std::string> ips;
    ips.reserve(sources.size());
    for (const auto& s : sources) ips.push_back(s.key.source_ip);
    chainmail::reverse_dns(ips, std::chrono::milliseconds(o.resolve_timeout_ms), 16, cache);
    for (auto& s : sources) s.ptr = cache[s.key.source_ip];
  }
  if (o.json) {
    const chainmail::DmarcTotals totals{reports.size(), messages, duplicates, filtered, stats.bad};
    std::cout << chainmail::dmarc_to_json(reports, sources, view, o.resolve, totals)
                     .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else if (o.csv) {
    std::cout << chainmail::render_dmarc_csv(reports, sources, view, o.resolve);
  } else {
    std::cout << chainmail::render_dmarc_table(reports, sources, view, o.resolve);
    std::cout << "\n"
              << stats.files << " files, " << reports.size() << " reports, " << messages << " messages; "
              << duplicates << " duplicates, " << filtered << " filtered out, " << stats.bad << " bad\n";
  }
  return stats.bad == 0 ? 0 : 1;
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

  auto* dmarc = app.add_subcommand(
      "dmarc",
      "Summarise DMARC aggregate reports: per report, and per source IP / From / disposition / results");
  DmarcOptions dmarc_opts;
  auto* dmarc_config = dmarc->add_option("--config", config_path, "Configuration file");
  dmarc->add_option("--maildir", dmarc_opts.maildir, "Maildir to read (default: dmarc_reports.maildir)");
  dmarc
      ->add_option(
          "--folder", dmarc_opts.folders,
          "Maildir++ folder to read, repeatable; INBOX for the root (default: dmarc_reports.folder_new)")
      ->allow_extra_args(false);
  dmarc->add_option("--since", dmarc_opts.since,
                    "Only reports whose period ends on or after this UTC day (YYYY-MM-DD)");
  dmarc->add_option("--until", dmarc_opts.until,
                    "Only reports whose period begins on or before this UTC day");
  dmarc->add_option("--domain", dmarc_opts.domains, "Only reports for this policy domain, repeatable")
      ->allow_extra_args(false);
  dmarc
      ->add_option("--reporter", dmarc_opts.reporters,
                   "Only reports whose organisation or contact contains this text, repeatable")
      ->allow_extra_args(false);
  dmarc->add_option("--view", dmarc_opts.view, "Tables to print: all, reports or sources")
      ->check(CLI::IsMember({"all", "reports", "sources"}));
  auto* dmarc_json = dmarc->add_flag("--json", dmarc_opts.json, "Print JSON");
  dmarc->add_flag("--csv", dmarc_opts.csv, "Print CSV (RFC 4180)")->excludes(dmarc_json);
  dmarc->add_flag("--resolve", dmarc_opts.resolve, "Add the reverse DNS name of each source IP");
  dmarc->add_option("--resolve-timeout", dmarc_opts.resolve_timeout_ms, "Milliseconds per reverse lookup")
      ->check(CLI::Range(1, 60000));
  dmarc->add_option(
      "path", dmarc_opts.paths,
      "Report files (.xml, .gz, .zip, .eml, Maildir messages) or directories, instead of the Maildir");

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
    if (dmarc->parsed()) {
      dmarc_opts.config_given = dmarc_config->count() > 0;
      return cmd_dmarc(config_path, dmarc_opts);
    }
  } catch (const std::exception& e) {
    std::cerr << "chainmail: " << e.what() << "\n";
    return EX_SOFTWARE;
  }
  return EX_USAGE;
}
