// route_bench.cc - the routing benchmark's driver; bench/route/run starts it against a generated directory.
//
//   route_bench --config chainmail.conf --addresses addresses.tsv [--threads 8] [--warm-seconds 1.5]
//               [--only cold|nocache|warm]
//   route_bench --config chainmail.conf --addresses addresses.tsv --dump-targets FILE
//
// Loads a chainmail.conf whose directory.uris point at the benchmark's slapd and reads the address mix
// ("category<TAB>address" lines; categories plain, forward, group, service, unknown). Then it measures
// Router::route as chainmail is deployed (a CachedDirectory with the configured [cache] options, the shipped
// defaults: 100000 entries, 60 s positive / 10 s negative TTL, in front of LdapDirectory):
//   cold     a FRESH cache at the start of one pass over the mix, as after a restart: lookups repeated within
//            the pass (members shared between groups, nested groups reached twice) hit it. One pass on 1
//            thread (counting LdapDirectory::round_trips() per resolution, per category, and checking each
//            outcome against its category), then one pass on N threads sharing another fresh cache.
//   nocache  Router over LdapDirectory alone: every directory lookup is an LDAP search, repeats included.
//            The same two passes (kept for transparency; this was "cold" before).
//   warm     a cache filled by a first, untimed pass; passes repeat for --warm-seconds on 1 thread, then
//            (re-filled) on N threads. Cache misses and LDAP searches during the timed part are reported:
//            both should be 0. Last, a few 1-thread passes timing each resolution, per category (with the
//            cache lookups it made).
// Before them, the LDAP round trips of one plain user routed alone, through a fresh cache and without one;
// and finally the peak RSS of this process (getrusage ru_maxrss).
// --dump-targets measures nothing: it routes every address of the mix once (no cache, 1 thread) and writes
// "address<TAB>outcome<TAB>kind:target,kind:target" lines to FILE, for comparing the routes themselves with
// Postfix's (bench/route/postfix_tables.py compare).
//
// Output: "key value" lines on stdout (progress on stderr). Exit 0 when it measured (or dumped); 2 for bad
// arguments, an unreadable config or address file or an unwritable --dump-targets file; 3 when the directory
// does not answer the first lookup. Slowness never fails it: the targets are judged by the run script's
// report.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/cached_directory.h"
#include "adapters/config_loader.h"
#include "adapters/ldap_directory.h"
#include "core/router.h"

namespace {

using Clock = std::chrono::steady_clock;
using chainmail::Outcome;
using chainmail::Router;
// Every pass routes as the socketmap server and the milter do: targets only, no path explanation
// (Router::Explain::no); `chainmail route` explains, and pays for it.
using chainmail::RouteResult;
using chainmail::TargetKind;

constexpr std::array<std::string_view, 5> kCategories = {"plain", "forward", "group", "service", "unknown"};
enum Category : std::size_t { kPlain, kForward, kGroup, kService, kUnknown };

struct Item {
  std::size_t category;
  std::string address;
};

struct Options {
  std::string config;
  std::string addresses;
  unsigned threads = 8;
  double warm_seconds = 1.5;
  bool cold = true;  // --only cold|nocache|warm (e.g. for a profiler)
  bool nocache = true;
  bool warm = true;
  std::string dump_targets;  // --dump-targets FILE: route once, write the targets, measure nothing
};

void emit(std::string_view key, const auto& value) {
  std::cout << key << ' ' << value << '\n';
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// What a correct router answers for an address of each category of the generated directory.
bool as_expected(std::size_t category, const RouteResult& r) {
  const bool one = r.outcome == Outcome::routed && r.targets.size() == 1;
  switch (category) {
    case kPlain:
    case kService:
      return one && r.targets.front().kind == TargetKind::mailbox;
    case kForward:
      return one && r.targets.front().kind == TargetKind::forward;
    case kGroup:
      return r.outcome == Outcome::routed && !r.targets.empty();
    case kUnknown:
      return r.outcome == Outcome::unknown;
    default:
      return false;
  }
}

struct Throughput {
  std::uint64_t resolutions = 0;
  std::uint64_t targets = 0;  // keeps the work observable
  std::uint64_t troubles = 0;
  double seconds = 0;
  double per_second() const { return seconds > 0 ? static_cast<double>(resolutions) / seconds : 0; }
};

// Routes the mix on `threads` threads: exactly one pass when `min_time` is zero, else passes (wrapping
// around the list) until `min_time` has elapsed.
Throughput measure(const Router& router, const std::vector<Item>& items, unsigned threads,
                   Clock::duration min_time) {
  constexpr std::uint64_t kBatch = 16;
  const std::uint64_t n = items.size();
  const bool timed = min_time > Clock::duration::zero();
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> targets{0};
  std::atomic<std::uint64_t> troubles{0};
  const auto start = Clock::now();
  const auto deadline = start + min_time;
  auto work = [&] {
    std::uint64_t my_done = 0;
    std::uint64_t my_targets = 0;
    std::uint64_t my_troubles = 0;
    for (;;) {
      const std::uint64_t first = next.fetch_add(kBatch, std::memory_order_relaxed);
      if (timed ? Clock::now() >= deadline : first >= n) break;
      const std::uint64_t last = timed ? first + kBatch : std::min(first + kBatch, n);
      for (std::uint64_t i = first; i < last; ++i) {
        const RouteResult r = router.route(items[i % n].address, Router::Explain::no);
        my_targets += r.targets.size();
        my_troubles += r.outcome == Outcome::trouble ? 1 : 0;
        ++my_done;
      }
    }
    done.fetch_add(my_done);
    targets.fetch_add(my_targets);
    troubles.fetch_add(my_troubles);
  };
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  Throughput out;
  out.seconds = seconds_between(start, Clock::now());
  out.resolutions = done.load();
  out.targets = targets.load();
  out.troubles = troubles.load();
  return out;
}

void emit_throughput(const std::string& prefix, const Throughput& t) {
  emit(prefix + "_resolutions", t.resolutions);
  emit(prefix + "_seconds", t.seconds);
  emit(prefix + "_per_s", static_cast<std::uint64_t>(t.per_second()));
  emit(prefix + "_targets", t.targets);
  emit(prefix + "_trouble", t.troubles);
}

bool parse_args(int argc, char** argv, Options& o) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (i + 1 >= args.size()) return false;
    const std::string_view v = args[++i];
    if (a == "--config") {
      o.config = std::string(v);
    } else if (a == "--addresses") {
      o.addresses = std::string(v);
    } else if (a == "--dump-targets") {
      o.dump_targets = std::string(v);
    } else if (a == "--threads") {
      const auto r = std::from_chars(v.data(), v.data() + v.size(), o.threads);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size() || o.threads == 0 || o.threads > 256)
        return false;
    } else if (a == "--only") {
      if (v != "cold" && v != "nocache" && v != "warm") return false;
      o.cold = v == "cold";
      o.nocache = v == "nocache";
      o.warm = v == "warm";
    } else if (a == "--warm-seconds") {
      const auto r = std::from_chars(v.data(), v.data() + v.size(), o.warm_seconds);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size() || o.warm_seconds <= 0) return false;
    } else {
      return false;
    }
  }
  return !o.config.empty() && !o.addresses.empty();
}

bool read_items(const std::string& path, std::vector<Item>& items) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() == '#') continue;
    const std::size_t tab = line.find('\t');
    if (tab == std::string::npos) return false;
    const auto it = std::find(kCategories.begin(), kCategories.end(), std::string_view(line).substr(0, tab));
    if (it == kCategories.end()) return false;
    items.push_back({static_cast<std::size_t>(it - kCategories.begin()), line.substr(tab + 1)});
  }
  return !items.empty();
}

struct CategoryStats {
  std::uint64_t count = 0;
  std::uint64_t round_trips = 0;
  std::uint64_t max_round_trips = 0;
  std::uint64_t mismatches = 0;
  double seconds = 0;
};

chainmail::CacheOptions cache_options_of(const chainmail::Config& config) {
  return {static_cast<std::size_t>(config.cache.max_entries),
          std::chrono::seconds(config.cache.positive_ttl_s),
          std::chrono::seconds(config.cache.negative_ttl_s)};
}

// Opens the LDAP pool's connections for `threads` threads (a few resolutions each, straight to LDAP), so
// that an N-thread pass does not time the binds.
void open_connections(const Router& nocache, const std::vector<Item>& items, unsigned threads) {
  const std::vector<Item> opener(
      items.begin(), items.begin() + static_cast<std::ptrdiff_t>(
                                         std::min<std::size_t>(items.size(), std::size_t{4} * threads)));
  measure(nocache, opener, threads, Clock::duration::zero());
}

// One pass over the mix on 1 thread: per category, the LDAP round trips, the time and the outcome checks.
// Emits PREFIX_1t_*, PREFIX_rt_*, PREFIX_count_*, PREFIX_us_*, PREFIX_unexpected*.
void one_thread_pass(const std::string& prefix, const Router& router, const chainmail::LdapDirectory& ldap,
                     const std::vector<Item>& items) {
  std::array<CategoryStats, kCategories.size()> stats{};
  Throughput t;
  const std::uint64_t rt_start = ldap.round_trips();
  const auto start = Clock::now();
  for (const Item& item : items) {
    const std::uint64_t rt0 = ldap.round_trips();
    const auto t0 = Clock::now();
    const RouteResult r = router.route(item.address, Router::Explain::no);
    const auto t1 = Clock::now();
    const std::uint64_t rt = ldap.round_trips() - rt0;
    CategoryStats& s = stats[item.category];
    ++s.count;
    s.round_trips += rt;
    s.max_round_trips = std::max(s.max_round_trips, rt);
    s.seconds += seconds_between(t0, t1);
    if (!as_expected(item.category, r) && s.mismatches++ == 0) {
      std::cerr << prefix << " unexpected: " << kCategories[item.category] << ' ' << item.address << " -> "
                << chainmail::outcome_name(r.outcome) << " (" << r.targets.size() << " targets) " << r.reason
                << '\n';
    }
    ++t.resolutions;
    t.targets += r.targets.size();
    t.troubles += r.outcome == Outcome::trouble ? 1 : 0;
  }
  t.seconds = seconds_between(start, Clock::now());
  const std::uint64_t round_trips = ldap.round_trips() - rt_start;
  emit_throughput(prefix + "_1t", t);
  emit(prefix + "_1t_round_trips", round_trips);
  emit(prefix + "_rt_per_resolution", static_cast<double>(round_trips) / static_cast<double>(items.size()));
  std::uint64_t mismatches = 0;
  for (std::size_t c = 0; c < kCategories.size(); ++c) {
    const CategoryStats& s = stats[c];
    const std::string k(kCategories[c]);
    const double count = s.count > 0 ? static_cast<double>(s.count) : 1.0;
    emit(prefix + "_count_" + k, s.count);
    emit(prefix + "_rt_" + k + "_mean", static_cast<double>(s.round_trips) / count);
    emit(prefix + "_rt_" + k + "_max", s.max_round_trips);
    emit(prefix + "_us_" + k + "_mean", s.seconds * 1e6 / count);
    emit(prefix + "_unexpected_" + k, s.mismatches);
    mismatches += s.mismatches;
  }
  emit(prefix + "_unexpected", mismatches);
}

// Cold, as deployed after a restart: Router over a FRESH CachedDirectory (the configured cache options) over
// LdapDirectory, one pass over the mix. Lookups repeated within the pass (members shared between groups,
// nested groups reached twice, the same service account) hit that cache. 1 thread, then N threads sharing a
// second fresh cache (one process, one cache, as the socketmap server runs).
void run_cold(const Options& opt, const std::vector<Item>& items, const chainmail::Config& config,
              chainmail::LdapDirectory& ldap, const Router& nocache) {
  const chainmail::CacheOptions cache_options = cache_options_of(config);
  {
    std::cerr << "cold (fresh cache), 1 thread...\n";
    chainmail::CachedDirectory cache(ldap, cache_options);
    const Router cold(config, cache);
    one_thread_pass("cold", cold, ldap, items);
    emit("cold_1t_cache_hits", cache.hits());
    emit("cold_1t_cache_misses", cache.misses());
    emit("cold_1t_cache_entries", cache.size());
  }
  std::cerr << "cold (fresh cache), " << opt.threads << " threads...\n";
  open_connections(nocache, items, opt.threads);
  chainmail::CachedDirectory cache(ldap, cache_options);
  const Router cold(config, cache);
  const std::uint64_t rt = ldap.round_trips();
  const Throughput coldn = measure(cold, items, opt.threads, Clock::duration::zero());
  const std::uint64_t round_trips = ldap.round_trips() - rt;
  emit_throughput("cold_nt", coldn);
  emit("cold_nt_round_trips", round_trips);
  emit("cold_nt_rt_per_resolution", static_cast<double>(round_trips) / static_cast<double>(items.size()));
  emit("cold_nt_cache_hits", cache.hits());
  emit("cold_nt_cache_misses", cache.misses());
}

// No cache (for transparency): Router over LdapDirectory alone, every directory lookup an LDAP search,
// repeats included. One pass on 1 thread, then one on N threads.
void run_nocache(const Options& opt, const std::vector<Item>& items, chainmail::LdapDirectory& ldap,
                 const Router& nocache) {
  std::cerr << "nocache, 1 thread...\n";
  one_thread_pass("nocache", nocache, ldap, items);
  std::cerr << "nocache, " << opt.threads << " threads...\n";
  open_connections(nocache, items, opt.threads);
  const std::uint64_t rt = ldap.round_trips();
  const Throughput t = measure(nocache, items, opt.threads, Clock::duration::zero());
  emit_throughput("nocache_nt", t);
  emit("nocache_nt_round_trips", ldap.round_trips() - rt);
}

// Warm: Router over the configured cache, filled by an untimed pass before each timed measurement.
void run_warm(const Options& opt, const std::vector<Item>& items, const chainmail::Config& config,
              chainmail::LdapDirectory& ldap) {
  chainmail::CachedDirectory cache(ldap, cache_options_of(config));
  const Router warm(config, cache);
  const auto warm_time =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.warm_seconds));
  for (const auto& [prefix, threads] :
       {std::pair<std::string, unsigned>{"warm_1t", 1U}, {"warm_nt", opt.threads}}) {
    std::cerr << "warm, " << threads << (threads == 1 ? " thread" : " threads") << "...\n";
    measure(warm, items, 1, Clock::duration::zero());  // fill (again: negative answers expire soonest)
    const std::uint64_t misses = cache.misses();
    const std::uint64_t rt = ldap.round_trips();
    const Throughput t = measure(warm, items, threads, warm_time);
    emit_throughput(prefix, t);
    emit(prefix + "_cache_misses", cache.misses() - misses);
    emit(prefix + "_round_trips", ldap.round_trips() - rt);
  }

  // Per category, 1 thread: where the warm time goes.
  constexpr int kPasses = 5;
  std::array<CategoryStats, kCategories.size()> stats{};  // round_trips: cache lookups here
  measure(warm, items, 1, Clock::duration::zero());
  for (int pass = 0; pass < kPasses; ++pass) {
    for (const Item& item : items) {
      const std::uint64_t lookups0 = cache.hits() + cache.misses();
      const auto t0 = Clock::now();
      const RouteResult r = warm.route(item.address, Router::Explain::no);
      const auto t1 = Clock::now();
      CategoryStats& s = stats[item.category];
      ++s.count;
      s.round_trips += cache.hits() + cache.misses() - lookups0;
      s.seconds += seconds_between(t0, t1);
      s.mismatches += as_expected(item.category, r) ? 0 : 1;
    }
  }
  for (std::size_t c = 0; c < kCategories.size(); ++c) {
    const CategoryStats& s = stats[c];
    const std::string k(kCategories[c]);
    const double count = s.count > 0 ? static_cast<double>(s.count) : 1.0;
    emit("warm_us_" + k + "_mean", s.seconds * 1e6 / count);
    emit("warm_lookups_" + k + "_mean", static_cast<double>(s.round_trips) / count);
    emit("warm_unexpected_" + k, s.mismatches);
  }
  emit("cache_entries", cache.size());
}

// --dump-targets: every address of the mix routed once by `router`, "address<TAB>outcome<TAB>targets" lines
// (targets "kind:address", comma-separated, in the router's order). False when FILE cannot be written.
bool dump_targets(const std::string& path, const Router& router, const std::vector<Item>& items) {
  std::ofstream out(path);
  for (const Item& item : items) {
    const RouteResult r = router.route(item.address, Router::Explain::no);
    out << item.address << '\t' << chainmail::outcome_name(r.outcome) << '\t';
    for (std::size_t i = 0; i < r.targets.size(); ++i) {
      out << (i == 0 ? "" : ",") << chainmail::target_kind_name(r.targets[i].kind) << ':'
          << r.targets[i].address;
    }
    out << '\n';
  }
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!parse_args(argc, argv, opt)) {
    std::cerr << "usage: route_bench --config FILE --addresses FILE [--threads N] [--warm-seconds S] "
                 "[--only cold|nocache|warm]\n"
                 "       route_bench --config FILE --addresses FILE --dump-targets FILE\n";
    return 2;
  }
  const auto loaded = chainmail::load_config_file(opt.config);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::cerr << e << '\n';
    return 2;
  }
  const chainmail::Config& config = loaded.config;
  if (config.directory.uris.empty()) {
    std::cerr << opt.config << ": directory.uris is empty: the benchmark needs an LDAP directory\n";
    return 2;
  }
  std::vector<Item> items;
  if (!read_items(opt.addresses, items)) {
    std::cerr << opt.addresses << ": unreadable, empty, or not \"category<TAB>address\" lines\n";
    return 2;
  }
  const auto plain =
      std::find_if(items.begin(), items.end(), [](const Item& i) { return i.category == kPlain; });

  emit("config", opt.config);
  emit("addresses", items.size());
  emit("threads", opt.threads);
  emit("hardware_threads", std::thread::hardware_concurrency());

  const chainmail::CacheOptions cache_options = cache_options_of(config);
  emit("cache_max_entries", cache_options.max_entries);
  emit("cache_positive_ttl_s", cache_options.positive_ttl.count());
  emit("cache_negative_ttl_s", cache_options.negative_ttl.count());

  chainmail::LdapDirectory ldap(chainmail::LdapOptions::from(config));
  const Router nocache(config, ldap);

  // The first lookup opens and binds a connection; it also proves the setup works. After it, the round
  // trips of one plain user alone (when the mix has one): through a fresh cache, and without one.
  {
    const Item& first = plain != items.end() ? *plain : items.front();
    const RouteResult r = nocache.route(first.address, Router::Explain::no);
    if (r.outcome == Outcome::trouble) {
      std::cerr << "the directory does not answer: " << r.reason << '\n';
      return 3;
    }
    if (!opt.dump_targets.empty()) {
      if (dump_targets(opt.dump_targets, nocache, items)) return 0;
      std::cerr << opt.dump_targets << ": cannot write\n";
      return 2;
    }
    if (plain != items.end()) {
      emit("one_plain_user", plain->address);
      chainmail::CachedDirectory fresh(ldap, cache_options);
      const Router cold(config, fresh);
      std::uint64_t before = ldap.round_trips();
      const RouteResult cold_r = cold.route(plain->address, Router::Explain::no);
      emit("cold_rt_one_plain_user", ldap.round_trips() - before);
      emit("cold_one_plain_user_outcome", chainmail::outcome_name(cold_r.outcome));
      before = ldap.round_trips();
      const RouteResult nocache_r = nocache.route(plain->address, Router::Explain::no);
      emit("nocache_rt_one_plain_user", ldap.round_trips() - before);
      emit("nocache_one_plain_user_outcome", chainmail::outcome_name(nocache_r.outcome));
    }
  }

  if (opt.cold) run_cold(opt, items, config, ldap, nocache);
  if (opt.nocache) run_nocache(opt, items, ldap, nocache);
  if (opt.warm) run_warm(opt, items, config, ldap);

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  emit("peak_rss_kb", usage.ru_maxrss);
  return 0;
}
