// spf_checker_test.cc - the Checker over an in-memory zone: limits, DNS trouble, identities, threads, CPU
// cost.
#include "adapters/spf/spf_checker.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapters/dns/rdata.h"
#include "adapters/dns/static_resolver.h"

namespace chainmail::spf {
namespace {

using dns::RrType;

std::string a_rdata(const char* ip) {
  unsigned char b[4];
  EXPECT_EQ(inet_pton(AF_INET, ip, b), 1) << ip;
  return std::string(reinterpret_cast<const char*>(b), 4);
}

std::string aaaa_rdata(const char* ip) {
  unsigned char b[16];
  EXPECT_EQ(inet_pton(AF_INET6, ip, b), 1) << ip;
  return std::string(reinterpret_cast<const char*>(b), 16);
}

void spf(dns::StaticResolver& zone, const char* name, const char* record) {
  zone.add(name, RrType::txt, dns::encode_txt(record));
}

// A resolver that throws, to prove no exception escapes through libspf2.
class ThrowingResolver final : public dns::Resolver {
 public:
  dns::Answer resolve(std::string_view, dns::RrType) override {
    throw std::runtime_error("resolver exploded");
  }
};

TEST(SpfChecker, ResultWordsAreRfc8601) {
  EXPECT_EQ(to_string(Result::none), "none");
  EXPECT_EQ(to_string(Result::neutral), "neutral");
  EXPECT_EQ(to_string(Result::pass), "pass");
  EXPECT_EQ(to_string(Result::fail), "fail");
  EXPECT_EQ(to_string(Result::softfail), "softfail");
  EXPECT_EQ(to_string(Result::temperror), "temperror");
  EXPECT_EQ(to_string(Result::permerror), "permerror");
}

TEST(SpfChecker, VoidLookupLimitCountsAcrossIncludes) {
  dns::StaticResolver zone;
  spf(zone, "two.example", "v=spf1 a:nx1.example mx:nodata.example ?all");
  spf(zone, "three.example", "v=spf1 a:nx1.example a:nx2.example exists:nx3.example ?all");
  spf(zone, "split.example", "v=spf1 a:nx1.example include:inner.example ?all");
  spf(zone, "inner.example", "v=spf1 a:nx2.example ptr:nx3.example a:nx4.example -all");
  zone.add("nodata.example", RrType::a, a_rdata("192.0.2.99"));  // exists, but has no MX
  const char* ip = "192.0.2.1";

  Checker checker(zone, {});
  EXPECT_EQ(checker.check_mail_from(ip, "h.example", "a@two.example").result, Result::neutral);
  const Verdict over = checker.check_mail_from(ip, "h.example", "a@three.example");
  EXPECT_EQ(over.result, Result::permerror);
  EXPECT_NE(over.comment.find("void"), std::string::npos) << over.comment;
  // nx1 (top) + nx2 (include) + the PTR lookup of 192.0.2.1 (nxdomain) = 3.
  EXPECT_EQ(checker.check_mail_from(ip, "h.example", "a@split.example").result, Result::permerror);

  Options lenient;
  lenient.max_void_lookups = 3;
  Checker lenient_checker(zone, lenient);
  EXPECT_EQ(lenient_checker.check_mail_from(ip, "h.example", "a@three.example").result, Result::neutral);
}

TEST(SpfChecker, DnsTermLimitCountsAcrossIncludesAndIsConfigurable) {
  dns::StaticResolver zone;
  zone.add("host.example", RrType::a, a_rdata("192.0.2.200"));
  // 1 + 4 (include and its three a) + 1 + 4 = 10 terms, then ip4.
  spf(zone, "ten.example",
      "v=spf1 a:host.example include:four.example a:host.example include:four2.example "
      "ip4:192.0.2.1 -all");
  spf(zone, "four.example", "v=spf1 a:host.example a:host.example a:host.example");
  spf(zone, "four2.example", "v=spf1 a:host.example a:host.example a:host.example");
  spf(zone, "eleven.example",
      "v=spf1 a:host.example include:four.example a:host.example include:four2.example "
      "a:host.example ip4:192.0.2.1 -all");
  Checker checker(zone, {});
  EXPECT_EQ(checker.check_mail_from("192.0.2.1", "h.example", "x@ten.example").result, Result::pass);
  const Verdict v = checker.check_mail_from("192.0.2.1", "h.example", "x@eleven.example");
  EXPECT_EQ(v.result, Result::permerror);
  EXPECT_NE(v.comment.find("DNS-querying terms"), std::string::npos) << v.comment;

  Options strict;
  strict.max_dns_mechanisms = 3;
  Checker strict_checker(zone, strict);
  EXPECT_EQ(strict_checker.check_mail_from("192.0.2.1", "h.example", "x@ten.example").result,
            Result::permerror);
}

TEST(SpfChecker, DnsTroubleIsTemperrorExceptWhereTheRfcSaysOtherwise) {
  dns::StaticResolver zone;
  zone.set_trouble("top.example", RrType::txt);
  spf(zone, "a.example", "v=spf1 a:slow.example -all");
  zone.set_trouble("slow.example", RrType::a);
  spf(zone, "inc.example", "v=spf1 include:slowinc.example -all");
  zone.set_trouble("slowinc.example", RrType::txt);
  spf(zone, "mx.example", "v=spf1 mx -all");
  zone.add("mx.example", RrType::mx, dns::encode_mx(10, "slow.example"));
  // ptr (5.5): an error on the PTR lookup, or on one name's address, only means no match.
  spf(zone, "ptr.example", "v=spf1 ptr ?all");
  zone.set_trouble("1.2.0.192.in-addr.arpa", RrType::ptr);
  spf(zone, "ptr2.example", "v=spf1 ptr -all");
  zone.add("2.2.0.192.in-addr.arpa", RrType::ptr, dns::encode_name("slow.example"));
  zone.add("2.2.0.192.in-addr.arpa", RrType::ptr, dns::encode_name("good.ptr2.example"));
  zone.add("good.ptr2.example", RrType::a, a_rdata("192.0.2.2"));
  // exp= (6.2): trouble fetching the explanation leaves the result alone.
  spf(zone, "exp.example", "v=spf1 -all exp=why.exp.example");
  zone.set_trouble("why.exp.example", RrType::txt);

  Checker checker(zone, {});
  struct Case {
    const char* ip;
    const char* sender;
    Result want;
    const char* comment_names;  // the troubled name the comment must point at
  };
  const Case cases[] = {
      {"192.0.2.1", "x@top.example", Result::temperror, "TXT top.example"},
      {"192.0.2.1", "x@a.example", Result::temperror, "slow.example"},
      {"192.0.2.1", "x@inc.example", Result::temperror, "slowinc.example"},
      {"192.0.2.1", "x@mx.example", Result::temperror, "slow.example"},
      {"192.0.2.1", "x@ptr.example", Result::neutral, "ptr.example"},
      {"192.0.2.2", "x@ptr2.example", Result::pass, "ptr2.example"},
      {"192.0.2.1", "x@exp.example", Result::fail, "exp.example"},
  };
  for (const auto& c : cases) {
    const Verdict v = checker.check_mail_from(c.ip, "h.example", c.sender);
    EXPECT_EQ(v.result, c.want) << c.sender << ": " << v.comment;
    EXPECT_NE(v.comment.find(c.comment_names), std::string::npos) << v.comment;
  }
  EXPECT_TRUE(checker.check_mail_from("192.0.2.1", "h.example", "x@exp.example").explanation.empty());
}

TEST(SpfChecker, AResolverThatThrowsIsTemperror) {
  ThrowingResolver resolver;
  Checker checker(resolver, {});
  const Verdict v = checker.check_mail_from("192.0.2.1", "h.example", "x@example.org");
  EXPECT_EQ(v.result, Result::temperror);
  EXPECT_NE(v.comment.find("resolver exploded"), std::string::npos) << v.comment;
}

TEST(SpfChecker, IdentitiesAndExplanations) {
  dns::StaticResolver zone;
  spf(zone, "example.org", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all");
  spf(zone, "mail.example.org", "v=spf1 a -all exp=why.example.org");
  zone.add("mail.example.org", RrType::a, a_rdata("198.51.100.25"));
  zone.add("why.example.org", RrType::txt, dns::encode_txt("%{l} at %{o} may not send from %{i} (%{d})"));
  Options options;
  options.receiver = "mx.receiver.example";
  Checker checker(zone, options);

  Verdict v = checker.check_mail_from("192.0.2.7", "mail.example.org", "alice@example.org");
  EXPECT_EQ(v.result, Result::pass);
  EXPECT_EQ(v.domain, "example.org");
  EXPECT_NE(v.comment.find("192.0.2.7"), std::string::npos) << v.comment;
  EXPECT_EQ(checker.check_mail_from("2001:db8::7", "mail.example.org", "alice@example.org").result,
            Result::pass);
  EXPECT_EQ(checker.check_mail_from("::ffff:192.0.2.7", "x", "alice@example.org").result,
            Result::pass);  // IPv4
  EXPECT_EQ(checker.check_mail_from("203.0.113.9", "x", "alice@example.org").result, Result::softfail);
  EXPECT_TRUE(checker.check_mail_from("203.0.113.9", "x", "alice@example.org").explanation.empty());
  // Loopback gets no free pass (libspf2 would give one).
  EXPECT_EQ(checker.check_mail_from("127.0.0.1", "x", "alice@example.org").result, Result::softfail);

  // HELO identity, and the null reverse-path: postmaster@helo.
  v = checker.check_helo("198.51.100.25", "mail.example.org");
  EXPECT_EQ(v.result, Result::pass);
  EXPECT_EQ(v.domain, "mail.example.org");
  v = checker.check_mail_from("198.51.100.26", "mail.example.org", "");
  EXPECT_EQ(v.result, Result::fail);
  EXPECT_EQ(v.domain, "mail.example.org");
  EXPECT_EQ(v.explanation,
            "postmaster at mail.example.org may not send from 198.51.100.26 (mail.example.org)");
  v = checker.check_mail_from("198.51.100.26", "helo.example", "@mail.example.org");  // no local-part
  EXPECT_EQ(v.explanation,
            "postmaster at mail.example.org may not send from 198.51.100.26 (mail.example.org)");

  // What cannot be checked is none, never an error.
  const struct {
    const char* ip;
    const char* helo;
  } none_cases[] = {{"192.0.2.1", "[192.0.2.1]"},
                    {"192.0.2.1", "localhost"},
                    {"192.0.2.1", ""},
                    {"192.0.2.1", "a..example.org"},
                    {"not-an-ip", "mail.example.org"}};
  for (const auto& c : none_cases) {
    EXPECT_EQ(checker.check_helo(c.ip, c.helo).result, Result::none) << c.ip << " " << c.helo;
  }
  EXPECT_EQ(checker.check_mail_from("192.0.2.1", "x", "bob@nowhere.example").result, Result::none);
}

// Each thread checks its own mix of domains and expects what a single thread got, so results crossing between
// concurrent checks (per-check counters, explanation, libspf2 request state) would show.
TEST(SpfChecker, ConcurrentChecksDoNotShareState) {
  dns::StaticResolver zone;
  zone.add("host.example", RrType::a, a_rdata("192.0.2.10"));
  spf(zone, "pass.example", "v=spf1 a:host.example -all");
  spf(zone, "fail.example", "v=spf1 -all exp=why.example");
  zone.add("why.example", RrType::txt, dns::encode_txt("no %{l} from %{i}"));
  spf(zone, "voids.example", "v=spf1 a:nx1.example a:nx2.example a:nx3.example ?all");
  spf(zone, "twovoids.example", "v=spf1 a:nx1.example a:nx2.example ?all");
  spf(zone, "inc.example", "v=spf1 include:pass.example ~all");

  struct Probe {
    std::string ip, sender;
  };
  std::vector<Probe> probes;
  for (int i = 0; i < 40; ++i) {
    const std::string ip = "192.0.2." + std::to_string(i % 2 == 0 ? 10 : 20 + i);
    const char* domains[] = {"pass.example", "fail.example", "voids.example", "twovoids.example",
                             "inc.example"};
    std::string sender = "user";  // piecewise: GCC 12 -Wrestrict false positive
    sender += std::to_string(i);
    sender += '@';
    sender += domains[i % 5];
    probes.push_back({ip, sender});
  }
  Checker checker(zone, {});
  std::vector<Verdict> expected;
  expected.reserve(probes.size());
  for (const auto& p : probes) expected.push_back(checker.check_mail_from(p.ip, "h.example", p.sender));

  constexpr int kThreads = 8;
  constexpr int kRounds = 50;
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        for (std::size_t k = 0; k < probes.size(); ++k) {
          const std::size_t i = (k + static_cast<std::size_t>(t) * 7) % probes.size();
          const Verdict v = checker.check_mail_from(probes[i].ip, "h.example", probes[i].sender);
          if (v.result != expected[i].result || v.explanation != expected[i].explanation ||
              v.comment != expected[i].comment) {
            ++mismatches;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  // The mix really exercises different outcomes.
  EXPECT_EQ(expected[0].result, Result::pass);
  EXPECT_EQ(expected[1].result, Result::fail);
  EXPECT_EQ(expected[1].explanation, "no user1 from 192.0.2.21");
  EXPECT_EQ(expected[2].result, Result::permerror);
  EXPECT_EQ(expected[3].result, Result::neutral);
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// CPU per check with every answer at hand (StaticResolver: a map lookup, no network), so this is libspf2 plus
// our layer plus the in-memory zone. A typical record: an include, an mx with two hosts, ip4 ranges.
TEST(SpfChecker, CpuPerCheckWithAWarmCache) {
  dns::StaticResolver zone;
  spf(zone, "example.com", "v=spf1 ip4:198.51.100.0/24 include:_spf.example.net mx -all");
  spf(zone, "_spf.example.net", "v=spf1 ip4:203.0.113.0/24 ip6:2001:db8::/32 ~all");
  zone.add("example.com", RrType::mx, dns::encode_mx(10, "mx1.example.com"));
  zone.add("example.com", RrType::mx, dns::encode_mx(20, "mx2.example.com"));
  zone.add("mx1.example.com", RrType::a, a_rdata("192.0.2.25"));
  zone.add("mx2.example.com", RrType::a, a_rdata("192.0.2.26"));
  zone.add("mx2.example.com", RrType::aaaa, aaaa_rdata("2001:db8:1::26"));
  Checker checker(zone, {});
  ASSERT_EQ(checker.check_mail_from("192.0.2.26", "h.example", "a@example.com").result, Result::pass);
  ASSERT_EQ(checker.check_mail_from("192.0.2.99", "h.example", "a@example.com").result, Result::fail);

  constexpr int kChecks = 20000;
  const double start = thread_cpu_seconds();
  int passes = 0;
  for (int i = 0; i < kChecks; ++i) {
    // Alternate a pass at the last term and a fail after every term: the expensive paths.
    const Verdict v =
        checker.check_mail_from(i % 2 == 0 ? "192.0.2.26" : "192.0.2.99", "h.example", "a@example.com");
    passes += v.result == Result::pass ? 1 : 0;
  }
  const double per_check_us = (thread_cpu_seconds() - start) / kChecks * 1e6;
  EXPECT_EQ(passes, kChecks / 2);
  std::printf("[ measure  ] CPU per check (warm, in-memory DNS, 4 lookups): %.1f us\n", per_check_us);
  // Generous, so a Debug or sanitizer build passes; it exists to catch an order-of-magnitude regression.
  EXPECT_LT(per_check_us, 1000.0);
}

}  // namespace
}  // namespace chainmail::spf
