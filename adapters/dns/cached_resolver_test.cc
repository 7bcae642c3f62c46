// cached_resolver_test.cc - CachedResolver over a scripted resolver (unit), and over UnboundResolver with a
// real unbound server (harness::DnsServer; the Unbound* cases, labelled integration), where the TTLs
// libunbound reports are checked and the CPU cost of a cache hit is measured against a round trip through
// libunbound.
#include "adapters/dns/cached_resolver.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/dns/rdata.h"
#include "adapters/dns/static_resolver.h"
#include "adapters/dns/unbound_resolver.h"
#include "harness/dns_server.h"

namespace chainmail::dns {
namespace {

using Status = Answer::Status;
using std::chrono::seconds;
using TimePoint = std::chrono::steady_clock::time_point;

// A clock the test moves by hand.
struct FakeClock {
  TimePoint now{std::chrono::hours(1)};
  CachedResolver::Clock fn() {
    return [this] { return now; };
  }
};

// Answers whatever the test scripted for a name (any type), counting how often it was asked.
class ScriptedResolver final : public Resolver {
 public:
  void set(const std::string& name, Answer answer) {
    const std::lock_guard lock(mu_);
    answers_[name] = std::move(answer);
  }
  Answer resolve(std::string_view name, RrType /*type*/) override {
    ++asked_;
    const std::lock_guard lock(mu_);
    const auto it = answers_.find(std::string(name));
    return it == answers_.end() ? Answer{} : it->second;  // Answer{} is trouble
  }
  int asked() const { return asked_.load(); }

 private:
  std::mutex mu_;
  std::map<std::string, Answer> answers_;
  std::atomic<int> asked_{0};
};

Answer make(Status status, std::uint32_t ttl, std::vector<std::string> records = {}) {
  Answer a;
  a.status = status;
  a.ttl = ttl;
  a.records = std::move(records);
  return a;
}

std::string name_of(int i) {
  std::string s = "n";
  s += std::to_string(i);
  s += ".example";
  return s;
}

TEST(CachedResolver, RepeatsAreHitsAndNamesFoldCaseAndTrailingDot) {
  StaticResolver zone;
  zone.add("mail.example", RrType::a, std::string("\xc0\x00\x02\x01", 4));
  zone.add("mail.example", RrType::txt, encode_txt("v=spf1 -all"));
  FakeClock clock;
  CachedResolver cache(zone, CacheOptions{}, clock.fn());

  const Answer first = cache.resolve("mail.example", RrType::a);
  ASSERT_EQ(first.status, Status::found);
  EXPECT_EQ(first.ttl, StaticResolver::kTtl);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.hits(), 0u);

  for (const char* spelling : {"mail.example", "MAIL.Example", "mail.example."}) {
    const Answer again = cache.resolve(spelling, RrType::a);
    EXPECT_EQ(again.status, Status::found) << spelling;
    EXPECT_EQ(again.records, first.records) << spelling;
  }
  EXPECT_EQ(cache.hits(), 3u);
  EXPECT_EQ(zone.queries(), 1u);

  // Another type of the same name is another entry.
  EXPECT_EQ(cache.resolve("mail.example", RrType::txt).records.at(0), encode_txt("v=spf1 -all"));
  EXPECT_EQ(cache.resolve("mail.example", RrType::mx).status, Status::nodata);
  EXPECT_EQ(cache.misses(), 3u);
  EXPECT_EQ(zone.queries(), 3u);
  EXPECT_EQ(cache.size(), 3u);
}

TEST(CachedResolver, AnswersLiveTheirTtlCappedByTheOptions) {
  struct Case {
    const char* what;
    Answer answer;
    std::uint32_t lives;  // seconds it is answered from memory; 0 = never kept
  };
  CacheOptions options;
  options.max_ttl_s = 600;
  options.negative_ttl_s = 45;
  const std::vector<Case> cases = {
      {"found, short ttl", make(Status::found, 30, {"\x01\x02\x03\x04"}), 30},
      {"found, ttl above the cap", make(Status::found, 86400, {"\x01\x02\x03\x04"}), 600},
      {"found, ttl 0", make(Status::found, 0, {"\x01\x02\x03\x04"}), 0},
      {"nxdomain, SOA minimum below the cap", make(Status::nxdomain, 20), 20},
      {"nxdomain, SOA minimum above the cap", make(Status::nxdomain, 3600), 45},
      {"nodata, above the cap", make(Status::nodata, 300), 45},
      {"nodata, ttl 0", make(Status::nodata, 0), 0},
      {"trouble, even with a ttl", make(Status::trouble, 300), 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    ScriptedResolver next;
    next.set("x.example", c.answer);
    FakeClock clock;
    CachedResolver cache(next, options, clock.fn());

    EXPECT_EQ(cache.resolve("x.example", RrType::a).status, c.answer.status);
    ASSERT_EQ(next.asked(), 1);
    if (c.lives == 0) {
      EXPECT_EQ(cache.resolve("x.example", RrType::a).status, c.answer.status);
      EXPECT_EQ(next.asked(), 2);
      EXPECT_EQ(cache.size(), 0u);
      continue;
    }
    clock.now += seconds(c.lives - 1);
    const Answer held = cache.resolve("x.example", RrType::a);
    EXPECT_EQ(held.status, c.answer.status);
    EXPECT_EQ(held.records, c.answer.records);
    EXPECT_EQ(held.ttl, 1u);  // what is left of its life
    EXPECT_EQ(next.asked(), 1);

    clock.now += seconds(1);  // expired now
    EXPECT_EQ(cache.resolve("x.example", RrType::a).status, c.answer.status);
    EXPECT_EQ(next.asked(), 2);
    EXPECT_EQ(cache.hits(), 1u);
    EXPECT_EQ(cache.misses(), 2u);
  }
}

TEST(CachedResolver, TroubleIsNeverKeptAndRecoveryIsSeenAtOnce) {
  StaticResolver zone;
  zone.add("flaky.example", RrType::txt, encode_txt("v=DMARC1; p=reject"));
  zone.set_trouble("down.example", RrType::txt);
  CachedResolver cache(zone, CacheOptions{});
  for (int i = 0; i < 3; ++i) {
    const Answer a = cache.resolve("down.example", RrType::txt);
    EXPECT_EQ(a.status, Status::trouble);
    EXPECT_FALSE(a.why.empty());  // passed through for the log
  }
  EXPECT_EQ(zone.queries(), 3u);
  EXPECT_EQ(cache.hits(), 0u);

  // Trouble for one name does not disturb a neighbour's cached answer.
  EXPECT_TRUE(cache.resolve("flaky.example", RrType::txt).found());
  EXPECT_TRUE(cache.resolve("flaky.example", RrType::txt).found());
  EXPECT_EQ(cache.hits(), 1u);

  ScriptedResolver next;
  CachedResolver cache2(next, CacheOptions{});
  EXPECT_TRUE(cache2.resolve("later.example", RrType::a).trouble());
  next.set("later.example", make(Status::found, 300, {std::string("\x7f\0\0\x01", 4)}));
  EXPECT_TRUE(cache2.resolve("later.example", RrType::a).found());
  EXPECT_EQ(next.asked(), 2);
}

TEST(CachedResolver, EntriesAreBoundedByCount) {
  ScriptedResolver next;
  for (int i = 0; i < 1000; ++i) next.set(name_of(i), make(Status::found, 300, {"\x01\x02\x03\x04"}));
  CacheOptions options;
  options.max_entries = 64;  // 4 per shard
  CachedResolver cache(next, options);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(cache.resolve(name_of(i), RrType::a).found());
  EXPECT_LE(cache.size(), 64u);
  EXPECT_GE(cache.size(), 16u);  // every shard keeps something
  // The most recent answer of all is still there.
  const int before = next.asked();
  EXPECT_TRUE(cache.resolve(name_of(999), RrType::a).found());
  EXPECT_EQ(next.asked(), before);
}

TEST(CachedResolver, EntriesAreBoundedByBytesAndHugeAnswersPassThrough) {
  ScriptedResolver next;
  const std::string big(3000, 'x');
  for (int i = 0; i < 100; ++i) next.set(name_of(i), make(Status::found, 300, {big}));
  next.set("huge.example", make(Status::found, 300, {std::string(10000, 'y')}));
  CacheOptions options;
  options.max_bytes =
      std::size_t{16} * 8000;  // 8000 bytes per shard: two of the big answers fit, three do not
  CachedResolver cache(next, options);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(cache.resolve(name_of(i), RrType::txt).found());
  EXPECT_LE(cache.size(), 32u);
  EXPECT_GE(cache.size(), 16u);

  const Answer huge = cache.resolve("huge.example", RrType::txt);
  ASSERT_TRUE(huge.found());
  EXPECT_EQ(huge.records.at(0).size(), 10000u);  // answered, just not kept
  const int before = next.asked();
  EXPECT_TRUE(cache.resolve("huge.example", RrType::txt).found());
  EXPECT_EQ(next.asked(), before + 1);
}

TEST(CachedResolver, EightThreadsSeeTheRightAnswers) {
  constexpr int kThreads = 8;
  constexpr int kNames = 200;
  constexpr int kRounds = 50;
  StaticResolver zone;
  for (int i = 0; i < kNames; ++i) {
    if (i % 3 != 0) zone.add(name_of(i), RrType::txt, encode_txt(name_of(i)));  // i % 3 == 0: nxdomain
  }
  CacheOptions options;
  options.max_entries = 160;  // fewer than the names, so eviction runs concurrently too
  CachedResolver cache(zone, options);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        for (int k = 0; k < kNames; ++k) {
          // Three in four lookups go to 40 hot names; the rest sweep all 200 and keep evicting cold ones.
          const int i = k % 4 == 0 ? (k + t * 37) % kNames : (k + t) % 40;
          const Answer a = cache.resolve(name_of(i), RrType::txt);
          const bool ok = i % 3 == 0
                              ? a.status == Status::nxdomain
                              : a.found() && a.records.size() == 1 && decode_txt(a.records[0]) == name_of(i);
          if (!ok) ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(cache.hits() + cache.misses(), static_cast<std::size_t>(kThreads * kRounds * kNames));
  EXPECT_EQ(zone.queries(), cache.misses());
  EXPECT_GT(cache.hits(), cache.misses());
  EXPECT_LE(cache.size(), 160u);
}

// --- against a real unbound (integration) ---

// Process CPU (all threads: ours, libunbound's worker and our dispatcher), user and system, in microseconds.
struct Cpu {
  double user_us = 0;
  double sys_us = 0;
};
Cpu process_cpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return {static_cast<double>(ru.ru_utime.tv_sec) * 1e6 + static_cast<double>(ru.ru_utime.tv_usec),
          static_cast<double>(ru.ru_stime.tv_sec) * 1e6 + static_cast<double>(ru.ru_stime.tv_usec)};
}

class UnboundCachedResolver : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new harness::DnsServer();
    server_->add_zone("hot.example");
    server_->add_txt("hot.example", "v=spf1 ip4:192.0.2.0/24 include:_spf.hot.example -all", 300);
    server_->add_record("hot.example. 300 IN SOA ns.hot.example. admin.hot.example. 1 3600 600 86400 30");
    server_->add_zone("nosoa.example");
    server_->add_record("a.nosoa.example. 300 IN A 192.0.2.7");
    server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static UnboundOptions options() {
    UnboundOptions o;
    o.forwarders = {server_->resolver()};
    return o;
  }
  static harness::DnsServer* server_;
};

harness::DnsServer* UnboundCachedResolver::server_ = nullptr;

TEST_F(UnboundCachedResolver, UnboundReportsTtls) {
  UnboundResolver unbound(options());
  const Answer found = unbound.resolve("hot.example", RrType::txt);
  ASSERT_TRUE(found.found()) << found.why;
  EXPECT_GT(found.ttl, 290u);
  EXPECT_LE(found.ttl, 300u);

  const Answer soa_negative = unbound.resolve("missing.hot.example", RrType::txt);
  ASSERT_EQ(soa_negative.status, Status::nxdomain);
  EXPECT_GT(soa_negative.ttl, 0u);
  EXPECT_LE(soa_negative.ttl, 30u);  // the SOA minimum

  // No SOA: libunbound reports 32768 (unbound 1.17); the resolver reuses such answers for 60 s.
  const Answer nodata = unbound.resolve("a.nosoa.example", RrType::txt);
  ASSERT_EQ(nodata.status, Status::nodata);
  EXPECT_EQ(nodata.ttl, 60u);
  const Answer nxdomain = unbound.resolve("missing.nosoa.example", RrType::a);
  ASSERT_EQ(nxdomain.status, Status::nxdomain);
  EXPECT_EQ(nxdomain.ttl, 60u);

  UnboundOptions dead;
  dead.forwarders = {"127.0.0.1@1"};
  dead.timeout_ms = 300;
  UnboundResolver nobody(dead);
  const Answer trouble = nobody.resolve("hot.example", RrType::txt);
  EXPECT_TRUE(trouble.trouble());
  EXPECT_EQ(trouble.ttl, 0u);
}

TEST_F(UnboundCachedResolver, CpuPerResolveHitVersusLibunbound) {
  constexpr int kQueries = 20000;
  UnboundResolver unbound(options());
  CachedResolver cache(unbound, CacheOptions{});
  const Answer warm = cache.resolve("hot.example", RrType::txt);  // libunbound's cache and ours are warm now
  ASSERT_TRUE(warm.found()) << warm.why;

  auto measure = [&](Resolver& r) {
    const Cpu before = process_cpu();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kQueries; ++i) {
      const Answer a = r.resolve("hot.example", RrType::txt);
      if (a.records != warm.records) ADD_FAILURE() << "answer changed: " << a.why;
    }
    const auto wall = std::chrono::steady_clock::now() - start;
    const Cpu after = process_cpu();
    const double wall_us = std::chrono::duration<double, std::micro>(wall).count();
    return std::array<double, 3>{(after.user_us - before.user_us) / kQueries,
                                 (after.sys_us - before.sys_us) / kQueries, wall_us / kQueries};
  };
  const auto through = measure(unbound);
  const auto hit = measure(cache);
  std::printf("[ measure  ] per resolve(), libunbound cache hit: user %.3f us, sys %.3f us, wall %.3f us\n",
              through[0], through[1], through[2]);
  std::printf("[ measure  ] per resolve(), CachedResolver hit:   user %.3f us, sys %.3f us, wall %.3f us\n",
              hit[0], hit[1], hit[2]);
  EXPECT_EQ(cache.hits(), static_cast<std::size_t>(kQueries));
  EXPECT_LT(hit[0] + hit[1], through[0] + through[1]);
}

}  // namespace
}  // namespace chainmail::dns
