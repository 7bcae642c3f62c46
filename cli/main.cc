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
#include <sysexits.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

#include "adapters/config_loader.h"
#include "cli/config_report.h"
#include "cli/directory_commands.h"
#include "cli/dmarc_input.h"
#include "cli/dmarc_json.h"
#include "cli/module_loader.h"
#include "cli/report_heap.h"
#include "core/dmarc_summary.h"
#include "core/maildir_folder.h"

namespace {

using chainmail::Config;

std::string default_config_path() {
  const char* env = std::getenv("CHAINMAIL_CONFIG");
  return env != nullptr && *env != '\0' ? env : "/etc/chainmail/chainmail.conf";
}

// Runs `entry` of the module chainmail-directory (route, socketmap) on `command`.
template <typename Command>
int run_directory_command(const char* entry, const Command& command) {
  std::string why;
  auto* run = chainmail::module_function<int(const Command*) noexcept>("chainmail-directory", entry, why);
  if (run == nullptr) {
    std::cerr << "chainmail: " << why << "\n";
    return EX_UNAVAILABLE;
  }
  return run(&command);
}

int cmd_config_check(const std::string& path) {
  const auto loaded = chainmail::load_config_file(path);
  for (const auto& e : loaded.errors) std::cout << e << "\n";
  if (!loaded.ok()) return EX_CONFIG;
  std::cout << path << ": ok\n";
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
  // The largest file named: the heap is prepared for it, and when it is large enough to be read as two halves
  // at once (core/dmarc_report.h) and dmarc_reports.parse_threads asks for that, the thread that reads the
  // second half is started before the heap is mapped: a thread's first run on an idle virtual CPU waits for
  // the hypervisor (about a millisecond, helper_thread.h), and the first half used to wait for it.
  std::uintmax_t largest = 0;
  for (const auto& p : o.paths) {
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(p, ec);  // fails for a directory
    if (!ec) largest = std::max(largest, size);
  }
  chainmail::set_up_report_malloc();  // before the helper thread starts
  // Files named on the command line need no configuration unless one is asked for; the Maildir does.
  Config config = chainmail::default_config();
  if (o.config_given || o.paths.empty() || std::filesystem::exists(config_path)) {
    auto loaded = chainmail::load_config_or_report(config_path);
    if (!loaded) return EX_CONFIG;
    config = std::move(*loaded);
  }
  chainmail::HelperThread helper(config.dmarc_reports.parse_threads > 1);
  if (largest >= chainmail::kReportSplitMinBytes) helper.prepare();
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
      if (!chainmail::valid_maildir_folder(f)) {
        std::cerr << "chainmail: dmarc: not a Maildir++ folder name: " << chainmail::printable(f) << "\n";
        return EX_USAGE;
      }
      const auto dir = chainmail::maildir_folder_dir(root, f);
      inputs.push_back(dir / "cur");
      inputs.push_back(dir / "new");
    }
  }

  // The heap a report needs (cli/report_heap.h): mapped at once for the largest file named (not more than the
  // decompression cap); a folder's files reuse the heap of the one before.
  chainmail::map_heap_ahead(chainmail::report_heap_bytes(static_cast<std::size_t>(std::min<std::uintmax_t>(
      largest, static_cast<std::uintmax_t>(config.dmarc_reports.max_decompressed_bytes)))));

  chainmail::ReportReadLimits limits;
  const auto& r = config.dmarc_reports;
  limits.max_file_bytes = static_cast<std::size_t>(r.max_message_bytes);
  limits.archive.max_bytes = static_cast<std::size_t>(r.max_decompressed_bytes);
  limits.archive.max_members = static_cast<std::size_t>(r.max_zip_members);
  limits.parse.max_depth = static_cast<std::size_t>(r.max_xml_depth);
  // The summary counts records by source (on the parser's threads, as they are read); it shows no auth result
  // or reason.
  limits.parse.keep_record_details = false;
  limits.tally_sources = true;

  chainmail::DmarcSummary summary(filter);
  const auto stats = chainmail::for_each_report(
      inputs, limits,
      [&summary](const std::filesystem::path& /*file*/, const chainmail::AggregateReport& report,
                 chainmail::SourceTally* tally) {
        if (tally != nullptr) {
          summary.add(report, std::move(*tally));
        } else {
          summary.add(report);
        }
      },
      [](const std::filesystem::path& file, const std::string& reason) {
        std::cerr << "chainmail: dmarc: " << chainmail::printable(file.string()) << ": "
                  << chainmail::printable(reason.substr(0, 300)) << "\n";
      },
      helper);

  if (summary.unlisted_reports() > 0 || summary.folded_sources() > 0)
    std::cerr << "chainmail: dmarc: memory limits: " << summary.unlisted_reports()
              << " reports counted but not listed, " << summary.folded_sources()
              << " records counted under source \"(other)\"\n";
  const auto reports = summary.reports();
  auto sources = summary.sources();  // rows that point into the summary, which outlives them
  const std::uint64_t messages = summary.messages();
  const std::uint64_t duplicates = summary.duplicates();
  const std::uint64_t filtered = summary.filtered();
  if (o.resolve && view != DmarcView::Reports) {
    std::map<std::string, std::string> cache;
    std::vector<std::string> ips;
    ips.reserve(sources.size());
    for (const auto& s : sources) ips.push_back(s.key->source_ip);
    chainmail::reverse_dns(ips, std::chrono::milliseconds(o.resolve_timeout_ms), 16, cache);
    for (auto& s : sources) s.ptr = cache[s.key->source_ip];
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
  chainmail::RouteCommand route_command;
  route->add_option("--config", config_path,
                    "Configuration file (default $CHAINMAIL_CONFIG or /etc/chainmail/chainmail.conf)");
  route->add_flag("--json", route_command.json, "Print JSON");
  route->add_flag("--stats", route_command.stats, "Print directory round trips and cache use to stderr");
  route->add_option("address", route_command.addresses, "Addresses to route")->required();

  auto* config = app.add_subcommand("config", "Configuration: defaults, check");
  config->require_subcommand(1);
  config->add_subcommand("defaults", "Print every parameter with its default, bounds and help");
  auto* check = config->add_subcommand("check", "Report every error of a configuration file, with its line");
  std::string check_path;
  check->add_option("file", check_path, "The file to check")->required();

  auto* socketmap =
      app.add_subcommand("socketmap", "Serve Postfix's socketmap protocol (maps \"route\" and \"senders\")");
  chainmail::SocketmapCommand socketmap_command;
  socketmap->add_option("--config", config_path, "Configuration file");
  socketmap->add_option("--listen", socketmap_command.listen,
                        "inet:HOST:PORT or unix:PATH (default: socketmap.listen)");

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
    if (route->parsed()) {
      route_command.config_path = config_path;
      return run_directory_command("chainmail_route_command", route_command);
    }
    if (config->got_subcommand("defaults")) {
      std::cout << chainmail::render_defaults();
      return 0;
    }
    if (check->parsed()) return cmd_config_check(check_path);
    if (socketmap->parsed()) {
      socketmap_command.config_path = config_path;
      return run_directory_command("chainmail_socketmap_command", socketmap_command);
    }
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
