// dmarc_test.cc - DMARC evaluation against records held by dns::StaticResolver, with Debian's public suffix
// list. Also proves that libopendmarc never queries DNS on its own during evaluate(): res_nquery (its
// resolver's only way out) is interposed below and counted.
#include "adapters/dmarc/dmarc.h"

#include <gtest/gtest.h>
#include <opendmarc/dmarc.h>
#include <resolv.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "adapters/dns/rdata.h"
#include "adapters/dns/static_resolver.h"

namespace {
std::atomic<int> res_nquery_calls{0};
}  // namespace

// Interposes glibc's res_nquery for this test program (libopendmarc.so binds to the executable's definition
// first). Answers "no such name" without sending anything.
extern "C" int res_nquery(res_state, const char*, int, int, unsigned char*, int) noexcept {
  ++res_nquery_calls;
  return -1;
}

namespace chainmail::dmarc {
namespace {

namespace fs = std::filesystem;

class DmarcTest : public ::testing::Test {
 protected:
  void txt(std::string_view name, std::string_view text) {
    zone_.add(name, dns::RrType::txt, dns::encode_txt(text));
  }
  Evaluator& evaluator() {
    if (!evaluator_) evaluator_ = std::make_unique<Evaluator>(zone_, options_, pct_roll_);
    return *evaluator_;
  }
  Evaluation run(const std::string& from, SpfInput spf, std::vector<DkimInput> dkim = {}) {
    return evaluator().evaluate({"192.0.2.1", from, std::move(spf), std::move(dkim)});
  }

  dns::StaticResolver zone_;
  Options options_;
  PctRoll pct_roll_;
  std::unique_ptr<Evaluator> evaluator_;
};

TEST_F(DmarcTest, PassViaAlignedSpf) {
  txt("_dmarc.example.org", "v=DMARC1; p=reject");
  const auto e = run("example.org", {"mail.example.org", "pass"});  // relaxed: same organizational domain
  EXPECT_EQ(e.result, Result::pass);
  EXPECT_TRUE(e.spf_aligned);
  EXPECT_FALSE(e.dkim_aligned);
  EXPECT_EQ(e.policy, Policy::reject);
  EXPECT_EQ(e.domain, "example.org");
  EXPECT_EQ(e.policy_domain, "example.org");
  EXPECT_EQ(e.reason, "p=reject; aligned SPF pass");
}

TEST_F(DmarcTest, PassViaAlignedDkimOnly) {
  txt("_dmarc.example.org", "v=DMARC1; p=reject");
  const auto e = run("example.org", {"bounces.mailer.example", "pass"}, {{"example.org", "pass"}});
  EXPECT_EQ(e.result, Result::pass);
  EXPECT_TRUE(e.dkim_aligned);
  EXPECT_FALSE(e.spf_aligned);
  EXPECT_EQ(e.reason, "p=reject; aligned DKIM pass");
}

TEST_F(DmarcTest, UnalignedPassesFail) {
  txt("_dmarc.example.org", "v=DMARC1; p=reject");
  const auto e =
      run("example.org", {"mailer.example", "pass"}, {{"mailer.example", "pass"}, {"example.org", "fail"}});
  EXPECT_EQ(e.result, Result::fail);
  EXPECT_EQ(e.policy, Policy::reject);
  EXPECT_FALSE(e.spf_aligned);
  EXPECT_FALSE(e.dkim_aligned);
  EXPECT_EQ(e.reason, "p=reject; no aligned SPF or DKIM pass");
}

// libopendmarc 1.4.2 keeps one "best" DKIM result; a failing signature for the exact From domain after an
// aligned pass would erase that pass if both were stored. Only passes are stored, so this passes.
TEST_F(DmarcTest, AlignedDkimPassSurvivesALaterAlignedFailure) {
  txt("_dmarc.example.org", "v=DMARC1; p=reject");
  const auto e = run("example.org", {"", "none"},
                     {{"mail.example.org", "pass"}, {"example.org", "fail"}, {"x.example", "pass"}});
  EXPECT_EQ(e.result, Result::pass);
  EXPECT_TRUE(e.dkim_aligned);
}

TEST_F(DmarcTest, RelaxedAndStrictAlignment) {
  txt("_dmarc.relaxed.example", "v=DMARC1; p=reject");
  txt("_dmarc.strict.example", "v=DMARC1; p=reject; aspf=s; adkim=s");
  struct Case {
    std::string from;
    SpfInput spf;
    std::vector<DkimInput> dkim;
    Result want;
  };
  const std::vector<Case> cases = {
      {"relaxed.example", {"bounce.relaxed.example", "pass"}, {}, Result::pass},
      {"relaxed.example", {"", "none"}, {{"sign.relaxed.example", "pass"}}, Result::pass},
      {"news.relaxed.example", {"relaxed.example", "pass"}, {}, Result::pass},  // parent of From aligns
      {"strict.example", {"bounce.strict.example", "pass"}, {}, Result::fail},
      {"strict.example", {"", "none"}, {{"sign.strict.example", "pass"}}, Result::fail},
      {"strict.example", {"STRICT.example.", "pass"}, {}, Result::pass},  // exact, case and final dot aside
      {"strict.example", {"", "none"}, {{"strict.example", "pass"}}, Result::pass},
  };
  for (const auto& c : cases) {
    const auto e = run(c.from, c.spf, c.dkim);
    EXPECT_EQ(e.result, c.want) << c.from << " spf=" << c.spf.domain << " " << e.reason;
  }
}

// Strict alignment under a real public suffix, where libopendmarc 1.4.2 alone would let a subdomain of an
// organizational From domain align (OpenDMARC #268).
TEST_F(DmarcTest, StrictAlignmentIsExactUnderARealSuffix) {
  txt("_dmarc.example.org", "v=DMARC1; p=reject; aspf=s; adkim=s");
  txt("_dmarc.example.net", "v=DMARC1; p=reject");
  struct Case {
    std::string from;
    SpfInput spf;
    std::vector<DkimInput> dkim;
    Result want;
  };
  const std::vector<Case> cases = {
      {"example.org", {"bounce.example.org", "pass"}, {}, Result::fail},
      {"example.org", {"", "none"}, {{"sub.example.org", "pass"}}, Result::fail},
      {"news.example.org", {"example.org", "pass"}, {{"example.org", "pass"}}, Result::fail},
      {"news.example.org", {"other.example.org", "pass"}, {}, Result::fail},
      {"example.org", {"example.org", "pass"}, {}, Result::pass},
      {"news.example.org", {"", "none"}, {{"news.example.org", "pass"}}, Result::pass},
      // Relaxed: any two names under the same organizational domain align, siblings included.
      {"a.example.net", {"b.example.net", "pass"}, {}, Result::pass},
      {"a.example.net", {"", "none"}, {{"c.d.example.net", "pass"}}, Result::pass},
      {"a.example.net", {"example.org", "pass"}, {{"example.com", "pass"}}, Result::fail},
  };
  for (const auto& c : cases) {
    const auto e = run(c.from, c.spf, c.dkim);
    EXPECT_EQ(e.result, c.want) << c.from << " spf=" << c.spf.domain << " " << e.reason;
  }
  // An aligned temperror under strict alignment means an exact match only.
  EXPECT_EQ(run("example.org", {"bounce.example.org", "temperror"}).result, Result::fail);
  EXPECT_EQ(run("example.org", {"example.org", "temperror"}).result, Result::temperror);
}

TEST_F(DmarcTest, SubdomainGetsSpFromTheOrganizationalDomain) {
  txt("_dmarc.example.org", "v=DMARC1; p=reject; sp=quarantine");
  const auto sub = run("news.example.org", {"mailer.example", "pass"});
  EXPECT_EQ(sub.result, Result::fail);
  EXPECT_EQ(sub.policy, Policy::quarantine);
  EXPECT_EQ(sub.domain, "news.example.org");
  EXPECT_EQ(sub.policy_domain, "example.org");
  EXPECT_EQ(sub.reason, "sp=quarantine; no aligned SPF or DKIM pass");
  const auto top = run("example.org", {"mailer.example", "pass"});
  EXPECT_EQ(top.policy, Policy::reject);
  EXPECT_EQ(top.reason, "p=reject; no aligned SPF or DKIM pass");
}

TEST_F(DmarcTest, SubdomainWithoutSpGetsP) {
  txt("_dmarc.example.org", "v=DMARC1; p=quarantine");
  const auto e = run("a.b.example.org", {"mailer.example", "pass"});
  EXPECT_EQ(e.result, Result::fail);
  EXPECT_EQ(e.policy, Policy::quarantine);
  EXPECT_EQ(e.policy_domain, "example.org");
}

TEST_F(DmarcTest, SubdomainsOwnRecordWinsAndUsesP) {
  txt("_dmarc.example.org", "v=DMARC1; p=none; sp=none");
  txt("_dmarc.news.example.org", "v=DMARC1; p=reject; sp=none");
  const auto e = run("news.example.org", {"mailer.example", "pass"});
  EXPECT_EQ(e.policy, Policy::reject);
  EXPECT_EQ(e.policy_domain, "news.example.org");
  EXPECT_EQ(zone_.queries(), 1U);
}

TEST_F(DmarcTest, OrganizationalDomainFallbackUnderAMultiLabelSuffix) {
  txt("_dmarc.example.co.uk", "v=DMARC1; p=reject");
  const auto before = zone_.queries();
  const auto e = run("a.b.example.co.uk", {"example.co.uk", "pass"});
  EXPECT_EQ(e.result, Result::pass);
  EXPECT_EQ(e.policy_domain, "example.co.uk");
  EXPECT_EQ(zone_.queries() - before, 2U);  // _dmarc.a.b.example.co.uk, then _dmarc.example.co.uk
}

TEST_F(DmarcTest, NonDmarcTxtIsDiscardedBeforeTheFallback) {
  txt("_dmarc.news.example.org", "v=spf1 -all");
  txt("_dmarc.example.org", "v=DMARC1; p=reject");
  const auto e = run("news.example.org", {"mailer.example", "pass"});
  EXPECT_EQ(e.result, Result::fail);
  EXPECT_EQ(e.policy_domain, "example.org");
}

TEST_F(DmarcTest, Policies) {
  txt("_dmarc.none.example", "v=DMARC1; p=none");
  txt("_dmarc.quarantine.example", "v=DMARC1; p=quarantine");
  txt("_dmarc.reject.example", "v=DMARC1; p=reject");
  const std::vector<std::pair<std::string, Policy>> cases = {{"none.example", Policy::none},
                                                             {"quarantine.example", Policy::quarantine},
                                                             {"reject.example", Policy::reject}};
  for (const auto& [domain, policy] : cases) {
    const auto fail = run(domain, {"mailer.example", "fail"});
    EXPECT_EQ(fail.result, Result::fail) << domain;
    EXPECT_EQ(fail.policy, policy) << domain;
    const auto pass = run(domain, {domain, "pass"});
    EXPECT_EQ(pass.result, Result::pass) << domain;
    EXPECT_EQ(pass.policy, policy) << domain;
  }
}

TEST_F(DmarcTest, NoRecordIsNone) {
  zone_.add_name("example.org");
  const auto e = run("news.example.org", {"news.example.org", "pass"});
  EXPECT_EQ(e.result, Result::none);
  EXPECT_EQ(e.policy, Policy::none);
  EXPECT_TRUE(e.policy_domain.empty());
  EXPECT_EQ(e.reason, "no DMARC record for news.example.org or example.org");
  const auto top = run("example.org", {"", "none"});
  EXPECT_EQ(top.result, Result::none);
  EXPECT_EQ(top.reason, "no DMARC record for example.org");
}

TEST_F(DmarcTest, DnsTroubleIsTemperror) {
  zone_.set_trouble("_dmarc.example.org", dns::RrType::txt);
  const auto e = run("example.org", {"example.org", "pass"});
  EXPECT_EQ(e.result, Result::temperror);
  EXPECT_EQ(e.policy, Policy::none);
  EXPECT_NE(e.reason.find("DNS trouble looking up _dmarc.example.org"), std::string::npos) << e.reason;
  // Trouble at the organizational domain, after "no record" at the From domain, is trouble too.
  const auto sub = run("news.example.org", {"example.org", "pass"});
  EXPECT_EQ(sub.result, Result::temperror);
  EXPECT_EQ(sub.policy_domain, "example.org");
}

TEST_F(DmarcTest, UndecodableTxtIsTemperror) {
  zone_.add("_dmarc.example.org", dns::RrType::txt, std::string("\x09short", 6));  // length byte says 9
  EXPECT_EQ(run("example.org", {"example.org", "pass"}).result, Result::temperror);
}

TEST_F(DmarcTest, TwoRecordsMeanNoPolicyAndNoFallback) {
  txt("_dmarc.news.example.org", "v=DMARC1; p=reject");
  txt("_dmarc.news.example.org", "v=DMARC1; p=none");
  txt("_dmarc.example.org", "v=DMARC1; p=reject");
  const auto before = zone_.queries();
  const auto e = run("news.example.org", {"mailer.example", "fail"});
  EXPECT_EQ(e.result, Result::none);
  EXPECT_EQ(e.policy, Policy::none);
  EXPECT_EQ(e.reason, "several DMARC records at _dmarc.news.example.org: no policy");
  EXPECT_EQ(zone_.queries() - before, 1U);
}

TEST_F(DmarcTest, MalformedRecords) {
  txt("_dmarc.bad.example", "v=DMARC1; p=bogus");
  txt("_dmarc.rua.example", "v=DMARC1; p=bogus; rua=mailto:dmarc@rua.example");
  txt("_dmarc.defaults.example", "v=DMARC1; p=reject; adkim=x; aspf=y; pct=lots");
  const auto bad = run("bad.example", {"mailer.example", "fail"});
  EXPECT_EQ(bad.result, Result::permerror);
  EXPECT_EQ(bad.policy, Policy::none);
  EXPECT_EQ(bad.policy_domain, "bad.example");
  EXPECT_EQ(bad.reason, "malformed DMARC record at _dmarc.bad.example: invalid p= value");
  const auto rua = run("rua.example", {"mailer.example", "fail"});
  EXPECT_EQ(rua.result, Result::fail);
  EXPECT_EQ(rua.policy, Policy::none);
  const auto defaults = run("defaults.example", {"bounce.defaults.example", "pass"});  // relaxed, pct=100
  EXPECT_EQ(defaults.result, Result::pass);
  const auto defaults_fail = run("defaults.example", {"mailer.example", "fail"});
  EXPECT_EQ(defaults_fail.policy, Policy::reject);
}

// libopendmarc 1.4.2 parses rf=iodef into the aspf field, which would make SPF alignment strict here.
TEST_F(DmarcTest, RfIodefDoesNotMakeSpfStrict) {
  txt("_dmarc.example.org", "v=DMARC1; p=reject; rf=iodef");
  EXPECT_EQ(run("news.example.org", {"bounce.example.org", "pass"}).result, Result::pass);  // siblings
}

TEST_F(DmarcTest, PctSamplingUsesTheInjectedRoll) {
  txt("_dmarc.reject.example", "v=DMARC1; p=reject; pct=50");
  txt("_dmarc.quarantine.example", "v=DMARC1; p=quarantine; pct=0");
  std::atomic<unsigned> roll{49};
  pct_roll_ = [&roll] { return roll.load(); };
  const auto sampled = run("reject.example", {"mailer.example", "fail"});
  EXPECT_EQ(sampled.policy, Policy::reject);
  EXPECT_EQ(sampled.reason, "p=reject; no aligned SPF or DKIM pass; pct=50 sampled");
  roll = 50;
  const auto spared = run("reject.example", {"mailer.example", "fail"});
  EXPECT_EQ(spared.result, Result::fail);
  EXPECT_EQ(spared.policy, Policy::quarantine);
  EXPECT_EQ(spared.reason, "p=reject; no aligned SPF or DKIM pass; pct=50 not sampled, applying quarantine");
  roll = 0;
  EXPECT_EQ(run("quarantine.example", {"mailer.example", "fail"}).policy, Policy::none);
  // A pass is never sampled: it stays a pass under the published policy.
  EXPECT_EQ(run("reject.example", {"reject.example", "pass"}).policy, Policy::reject);
}

TEST_F(DmarcTest, AlignedTemporaryErrorIsNotAVerdict) {
  txt("_dmarc.example.org", "v=DMARC1; p=reject");
  txt("_dmarc.monitor.example", "v=DMARC1; p=none");
  const auto spf = run("example.org", {"bounce.example.org", "temperror"});
  EXPECT_EQ(spf.result, Result::temperror);
  EXPECT_EQ(spf.policy, Policy::reject);
  const auto dkim = run("example.org", {"mailer.example", "fail"}, {{"example.org", "temperror"}});
  EXPECT_EQ(dkim.result, Result::temperror);
  // Trouble for a domain that could not have aligned changes nothing, nor does it under p=none.
  EXPECT_EQ(run("example.org", {"mailer.example", "temperror"}).result, Result::fail);
  EXPECT_EQ(run("monitor.example", {"monitor.example", "temperror"}).result, Result::fail);
  // An aligned pass beside the trouble is a pass.
  EXPECT_EQ(run("example.org", {"example.org", "temperror"}, {{"example.org", "pass"}}).result, Result::pass);
}

TEST_F(DmarcTest, InvalidFromDomainIsPermerror) {
  const std::vector<std::string> bad = {"",
                                        ".",
                                        "exa mple.org",
                                        "a..b",
                                        "[192.0.2.1]",
                                        std::string(300, 'a'),
                                        std::string(64, 'a') + ".example",
                                        "caf\xc3\xa9.example"};
  for (const auto& from : bad) {
    const auto e = run(from, {"example.org", "pass"});
    EXPECT_EQ(e.result, Result::permerror) << from;
    EXPECT_EQ(e.policy, Policy::none) << from;
  }
  EXPECT_EQ(zone_.queries(), 0U);
}

TEST_F(DmarcTest, FromDomainIsNormalised) {
  txt("_dmarc.example.org", "v=DMARC1; p=reject");
  const auto e = run("Example.ORG.", {"example.org", "pass"});
  EXPECT_EQ(e.result, Result::pass);
  EXPECT_EQ(e.domain, "example.org");
}

TEST_F(DmarcTest, OrganizationalDomain) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"www.example.com", "example.com"},
      {"example.com", "example.com"},
      {"WWW.Example.COM.", "example.com"},
      {"a.b.example.co.uk", "example.co.uk"},
      {"mail.pydis.wtf", "pydis.wtf"},
      {"user.github.io", "user.github.io"},         // private section of the list
      {"mx.corp.unknown-tld", "corp.unknown-tld"},  // RFC 7489 default rule
      {"com", "com"},
      {"not a domain", "not a domain"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(evaluator().organizational_domain(in), want) << in;
}

TEST_F(DmarcTest, ConstructorRefusesAMissingOrBogusList) {
  Options missing;
  missing.public_suffix_list = "/nonexistent/effective_tld_names.dat";
  EXPECT_THROW(Evaluator(zone_, missing), std::runtime_error);
  const auto bogus = fs::temp_directory_path() / ("dmarc-test-bogus-" + std::to_string(::getpid()) + ".dat");
  std::ofstream(bogus) << "// not a suffix list\nexample\n";
  Options junk;
  junk.public_suffix_list = bogus.string();
  EXPECT_THROW(Evaluator(zone_, junk), std::runtime_error);
  fs::remove(bogus);
  Options dir;
  dir.public_suffix_list = fs::temp_directory_path().string();
  EXPECT_THROW(Evaluator(zone_, dir), std::runtime_error);
  // After the failures the library still loads the real list.
  EXPECT_EQ(evaluator().organizational_domain("a.example.com"), "example.com");
}

TEST_F(DmarcTest, OneListPerProcess) {
  evaluator();
  {
    const Evaluator second(zone_, Options{});  // the same list: shares it
    EXPECT_EQ(second.organizational_domain("www.example.com"), "example.com");
    Options other;
    other.public_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat";
    EXPECT_THROW(Evaluator(zone_, other), std::runtime_error);
  }
  // Destroying the second did not unload the list under the first.
  EXPECT_EQ(evaluator().organizational_domain("www.example.co.uk"), "example.co.uk");
  evaluator_.reset();
  EXPECT_EQ(evaluator().organizational_domain("www.example.co.uk"), "example.co.uk");
}

TEST_F(DmarcTest, LibopendmarcNeverQueriesDnsItself) {
  txt("_dmarc.example.org",
      "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.org; ruf=mailto:f@x.example");
  evaluator();
  // Control: libopendmarc's own lookup does reach res_nquery, so the counter can see it.
  {
    std::string ip = "192.0.2.1";
    std::string domain = "example.org";
    DMARC_POLICY_T* p = opendmarc_policy_connect_init(reinterpret_cast<u_char*>(ip.data()), 0);
    ASSERT_NE(p, nullptr);
    const int before = res_nquery_calls.load();
    opendmarc_policy_query_dmarc(p, reinterpret_cast<u_char*>(domain.data()));
    opendmarc_policy_connect_shutdown(p);
    ASSERT_GT(res_nquery_calls.load(), before) << "res_nquery interposition does not work";
  }
  const int before = res_nquery_calls.load();
  run("example.org", {"example.org", "pass"});
  run("news.example.org", {"mailer.example", "fail"},
      {{"example.org", "temperror"}, {"news.example.org", "fail"}});
  run("nothing.example", {"nothing.example", "pass"});
  EXPECT_EQ(res_nquery_calls.load(), before);
}

TEST_F(DmarcTest, ThreadSafeWithEightThreads) {
  txt("_dmarc.example.org", "v=DMARC1; p=reject; sp=quarantine; adkim=s");
  txt("_dmarc.example.co.uk", "v=DMARC1; p=none");
  zone_.set_trouble("_dmarc.flaky.example", dns::RrType::txt);
  struct Case {
    Input input;
    Result result;
    Policy policy;
  };
  const std::vector<Case> cases = {
      {{"192.0.2.1", "example.org", {"bounce.example.org", "pass"}, {}}, Result::pass, Policy::reject},
      {{"192.0.2.2", "example.org", {"mailer.example", "fail"}, {{"sub.example.org", "pass"}}},
       Result::fail,
       Policy::reject},
      {{"2001:db8::1", "news.example.org", {"mailer.example", "fail"}, {{"news.example.org", "pass"}}},
       Result::pass,
       Policy::quarantine},
      {{"192.0.2.3", "news.example.org", {"mailer.example", "fail"}, {}}, Result::fail, Policy::quarantine},
      {{"192.0.2.4", "shop.example.co.uk", {"example.co.uk", "pass"}, {}}, Result::pass, Policy::none},
      {{"192.0.2.5", "flaky.example", {"flaky.example", "pass"}, {}}, Result::temperror, Policy::none},
      {{"192.0.2.6", "nothing.example", {"nothing.example", "pass"}, {}}, Result::none, Policy::none},
  };
  auto& ev = evaluator();
  for (const auto& c : cases) {  // single-threaded first, so a wrong expectation shows as itself
    const auto e = ev.evaluate(c.input);
    EXPECT_EQ(e.result, c.result) << c.input.header_from_domain << ": " << e.reason;
    EXPECT_EQ(e.policy, c.policy) << c.input.header_from_domain << ": " << e.reason;
  }
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = 0; i < 300; ++i) {
        const auto& c = cases[(i + static_cast<std::size_t>(t)) % cases.size()];
        const auto e = ev.evaluate(c.input);
        if (e.result != c.result || e.policy != c.policy) ++wrong;
        if (ev.organizational_domain("a.b." + c.input.header_from_domain) !=
            ev.organizational_domain(c.input.header_from_domain)) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// Not a benchmark with a threshold: it reports the figure (CPU time of this thread, StaticResolver included).
TEST_F(DmarcTest, CpuTimePerEvaluate) {
  txt("_dmarc.example.org", "v=DMARC1; p=reject");
  const Input pass{
      "192.0.2.1", "news.example.org", {"bounce.example.org", "pass"}, {{"example.org", "pass"}}};
  const Input fail{"192.0.2.1", "example.org", {"mailer.example", "fail"}, {{"mailer.example", "pass"}}};
  auto& ev = evaluator();
  constexpr int kRounds = 2000;
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
  };
  int passes = 0;
  const double start = cpu_now();
  for (int i = 0; i < kRounds; ++i) {
    passes += ev.evaluate(i % 2 == 0 ? pass : fail).result == Result::pass ? 1 : 0;
  }
  const double per_eval = (cpu_now() - start) / kRounds;
  EXPECT_EQ(passes, kRounds / 2);
  std::cout << "[ figure ] CPU time per evaluate: " << per_eval << " us (" << kRounds << " rounds)\n";
  RecordProperty("cpu_us_per_evaluate", std::to_string(per_eval));
}

}  // namespace
}  // namespace chainmail::dmarc
