// route_cli_test.cc: `chainmail route --json` against a real slapd loaded with conf/ldap/demo.ldif and the
// sample conf/chainmail.conf: every branch of the chain, the priorities between them, nesting, cycles,
// details, case, domain aliases, and addresses full of LDAP filter metacharacters.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "harness/paths.h"
#include "integration_support.h"

namespace chainmail::integration {
namespace {

using Targets = std::vector<TargetView>;

struct RouteCase {
  const char* name;  // the test's name
  std::string address;
  std::string outcome;  // "routed", "unknown", "not-hosted", "invalid"
  Targets targets;      // exactly these, in this order
  // One substring per warning, in order: the result has exactly this many warnings.
  std::vector<std::string> warnings;
};

void PrintTo(const RouteCase& c, std::ostream* out) {
  *out << c.address;
}

// The demo directory's devops group: alice (user), joe (forwarding user), and the nested admins group
// with bob (user) and carol (forwarding user). `detail` is appended to every local part; `prefix` is the
// path that led to the group.
Targets devops_targets(const std::string& prefix, const std::string& detail = "") {
  return {
      {"mailbox", "alice" + detail + "@localhost", prefix + "group>member>user"},
      {"forward", "joe" + detail + "@jb3.dev", prefix + "group>member>forward>external"},
      {"mailbox", "bob" + detail + "@localhost", prefix + "group>group>member>user"},
      {"forward", "carol" + detail + "@example.net", prefix + "group>group>member>forward>external"},
  };
}

std::vector<RouteCase> route_cases() {
  return {
      // ---------------------------------------------------------------- one case per branch of the chain
      {"TransportRule",
       "fortune@int.pydis.wtf",
       "routed",
       {{"service", "fortune@service-mail.localhost", "transport"}},
       {}},
      {"TransportRuleKeepsDetail",
       "fortune+today@int.pydis.wtf",
       "routed",
       {{"service", "fortune+today@service-mail.localhost", "transport"}},
       {}},
      {"ForwardingUser",
       "carol@pydis.wtf",
       "routed",
       {{"forward", "carol@example.net", "forward>external"}},
       {}},
      {"ForwardingUserKeepsDetail",
       "joe+lists@pydis.wtf",
       "routed",
       {{"forward", "joe+lists@jb3.dev", "forward>external"}},
       {}},
      {"LocalUser", "alice@pydis.wtf", "routed", {{"mailbox", "alice@localhost", "user"}}, {}},
      {"Group", "devops@pydis.wtf", "routed", devops_targets(""), {}},
      {"ServiceAccount",
       "dmarc@int.pydis.wtf",
       "routed",
       {{"mailbox", "dmarc@localhost", "service-account"}},
       {}},
      {"AliasToGroup", "postmaster@pydis.wtf", "routed", devops_targets("alias>"), {}},
      {"AliasOnAliasDomain", "webmaster@owlcorp.uk", "routed", devops_targets("domain-alias>alias>"), {}},
      {"AliasWithExternalTarget",
       "security@pydis.wtf",
       "routed",
       [] {
         Targets t = devops_targets("alias>");
         t.push_back({"forward", "security-reports@example.org", "alias>external"});
         return t;
       }(),
       {}},
      {"Unknown", "nobody@pydis.wtf", "unknown", {}, {}},
      {"NotHosted", "x@example.org", "not-hosted", {}, {}},
      {"Invalid", "not-an-address", "invalid", {}, {}},

      // ---------------------------------------------------------------- priorities
      // joe is a member of devops, but as an address he is a forwarding user (b), not a mailbox (c).
      {"ForwardingUserInGroupRoutedDirectly",
       "joe@pydis.wtf",
       "routed",
       {{"forward", "joe@jb3.dev", "forward>external"}},
       {}},
      // The config alias staff = alice exists; the group staff (d) comes before aliases (f).
      {"GroupWinsOverAliasOfSameName",
       "staff@pydis.wtf",
       "routed",
       {{"mailbox", "staffer@localhost", "group>member>user"}},
       {}},
      // fredrick is a directory user, but a transport rule (a) wins over everything.
      {"TransportRuleWinsOverUser",
       "fredrick@pydis.wtf",
       "routed",
       {{"service", "fredrick@service-mail.localhost", "transport"}},
       {}},

      // ---------------------------------------------------------------- nesting, cycles, empty groups
      {"NestedGroupWithServiceAccountAndDanglingMember",
       "everyone@pydis.wtf",
       "routed",
       [] {
         Targets t = devops_targets("group>");
         t.push_back({"mailbox", "dave@localhost", "group>member>user"});
         t.push_back({"mailbox", "dmarc@localhost", "group>member>service-account"});
         return t;
       }(),
       {"uid=gone3,cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf does not exist"}},
      {"CycleEndsWithOneWarning",
       "cycle-a@pydis.wtf",
       "routed",
       {{"mailbox", "bob@localhost", "group>group>member>user"},
        {"mailbox", "alice@localhost", "group>member>user"}},
       {"cycle"}},
      {"GroupOfDanglingMembersIsUnknown",
       "ghosts@pydis.wtf",
       "unknown",
       {},
       {"uid=gone1,", "uid=gone2,", "yields no deliverable address"}},
      {"GroupOfMembersWithoutMailIsUnknown",
       "nomail-team@pydis.wtf",
       "unknown",
       {},
       {"uid=nomail,cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf has no mail address",
        "yields no deliverable address"}},
      {"EmptyGroupIsUnknown", "empty@pydis.wtf", "unknown", {}, {"cn=empty,"}},

      // ---------------------------------------------------------------- details, case, domain aliases
      {"DetailThroughGroup", "devops+alerts@pydis.wtf", "routed", devops_targets("", "+alerts"), {}},
      {"DetailOnServiceAccount",
       "dmarc+reports@int.pydis.wtf",
       "routed",
       {{"mailbox", "dmarc+reports@localhost", "service-account"}},
       {}},
      {"DetailOnUser", "alice+news@pydis.wtf", "routed", {{"mailbox", "alice+news@localhost", "user"}}, {}},
      {"UpperCaseAddressOnAliasDomain",
       "ALICE@PyDis.COM",
       "routed",
       {{"mailbox", "alice@localhost", "domain-alias>user"}},
       {}},
      // The directory holds mail: Dave@pydis.wtf.
      {"DirectoryMailWithCapital", "dave@pydis.wtf", "routed", {{"mailbox", "dave@localhost", "user"}}, {}},
      {"UpperCaseAddressForCapitalisedMail",
       "DAVE@PYDIS.WTF",
       "routed",
       {{"mailbox", "dave@localhost", "user"}},
       {}},
      {"AliasDomainPythonDiscord",
       "joe@pythondiscord.com",
       "routed",
       {{"forward", "joe@jb3.dev", "domain-alias>forward>external"}},
       {}},
      {"AliasDomainOwlcorp",
       "bob@owlcorp.uk",
       "routed",
       {{"mailbox", "bob@localhost", "domain-alias>user"}},
       {}},
      {"UpperCaseGroupName", "DevOps@pydis.wtf", "routed", devops_targets(""), {}},

      // ---------------------------------------------------------------- locked account
      {"LockedAccountStillRouted",
       "mallory@pydis.wtf",
       "routed",
       {{"mailbox", "mallory@localhost", "user"}},
       {"locked"}},

      // ---------------------------------------------------------------- filter metacharacters: no match, no
      // harm
      {"FilterStar", "a*b@pydis.wtf", "unknown", {}, {}},
      {"FilterOnlyStar", "*@pydis.wtf", "unknown", {}, {}},
      {"FilterParentheses", R"("a(b)c"@pydis.wtf)", "unknown", {}, {}},
      {"FilterInjection", R"("x)(uid=*"@pydis.wtf)", "unknown", {}, {}},
      {"FilterBackslash", R"("back\\slash"@pydis.wtf)", "unknown", {}, {}},
  };
}

class RouteCli : public SlapdSuite<testing::TestWithParam<RouteCase>> {
 protected:
  void SetUp() override {
    SlapdSuite::SetUp();
    if (HasFatalFailure()) return;
    config_ = std::make_unique<ConfigFile>(demo_config({slapd().uri()}));
  }

  std::unique_ptr<ConfigFile> config_;
};

TEST_P(RouteCli, Routes) {
  const RouteCase& c = GetParam();
  const RouteRun r = route(config_->path(), {c.address});
  ASSERT_FALSE(r.run.timed_out);
  EXPECT_EQ(r.run.err, "");
  ASSERT_TRUE(r.json.is_array()) << r.run.out;
  ASSERT_EQ(r.json.size(), 1U);
  const auto& result = r.json[0];

  EXPECT_EQ(result.value("address", ""), c.address);
  EXPECT_EQ(result.value("outcome", ""), c.outcome) << result.dump(2);
  EXPECT_EQ(r.run.exit_code, c.outcome == "routed" ? 0 : 1);
  EXPECT_EQ(targets_of(result), c.targets) << result.dump(2);
  for (const auto& t : targets_of(result)) EXPECT_TRUE(is_single_address(t.address)) << t;
  EXPECT_FALSE(result.contains("trouble")) << result.dump(2);
  if (c.outcome != "routed") {
    EXPECT_FALSE(result.value("reason", "").empty()) << result.dump(2);
  }

  const auto warnings = warnings_of(result);
  ASSERT_EQ(warnings.size(), c.warnings.size()) << result.dump(2);
  for (std::size_t i = 0; i < warnings.size(); ++i) {
    EXPECT_NE(warnings[i].find(c.warnings[i]), std::string::npos) << "warning " << i << ": " << warnings[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Demo, RouteCli, testing::ValuesIn(route_cases()),
                         [](const testing::TestParamInfo<RouteCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

// Every target's path records each rule with its flowchart letter and what it matched.
class RouteDetails : public SlapdSuite<> {
 protected:
  void SetUp() override {
    SlapdSuite::SetUp();
    if (HasFatalFailure()) return;
    config_ = std::make_unique<ConfigFile>(demo_config({slapd().uri()}));
  }

  std::unique_ptr<ConfigFile> config_;
};

TEST_F(RouteDetails, PathNamesLettersSubjectsAndDetails) {
  const RouteRun r = route(config_->path(), {"postmaster@pydis.com"});
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  const auto& path = r.json[0]["targets"][1]["path"];  // joe, through the alias, the group and his forward
  ASSERT_EQ(path.size(), 6U) << path.dump(2);
  EXPECT_EQ(path[0]["rule"], "domain-alias");
  EXPECT_FALSE(path[0].contains("letter"));
  EXPECT_EQ(path[1]["rule"], "alias");
  EXPECT_EQ(path[1]["letter"], "f");
  EXPECT_EQ(path[1]["detail"], "postmaster = devops");
  EXPECT_EQ(path[2]["rule"], "group");
  EXPECT_EQ(path[2]["letter"], "d");
  EXPECT_EQ(path[2]["subject"], "devops@pydis.wtf");
  EXPECT_EQ(path[2]["detail"], "cn=devops,cn=groups,cn=accounts,dc=box,dc=pydis,dc=wtf");
  EXPECT_EQ(path[3]["rule"], "member");
  EXPECT_EQ(path[4]["rule"], "forward");
  EXPECT_EQ(path[4]["letter"], "b");
  EXPECT_EQ(path[4]["detail"], "uid=joe,cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf");
  EXPECT_EQ(path[5]["rule"], "external");
  EXPECT_EQ(path[5]["subject"], "joe@jb3.dev");
}

// Several addresses in one run: results in order, and the exit status is the worst of them.
TEST_F(RouteDetails, SeveralAddressesExitWithTheWorstOutcome) {
  RouteRun r = route(config_->path(), {"alice@pydis.wtf", "joe@pydis.wtf", "fortune@int.pydis.wtf"});
  EXPECT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), 3U);
  EXPECT_EQ(r.json[0]["address"], "alice@pydis.wtf");
  EXPECT_EQ(r.json[1]["address"], "joe@pydis.wtf");
  EXPECT_EQ(r.json[2]["address"], "fortune@int.pydis.wtf");

  r = route(config_->path(), {"alice@pydis.wtf", "nobody@pydis.wtf", "x@example.org"});
  EXPECT_EQ(r.run.exit_code, 1) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), 3U);
  EXPECT_EQ(r.json[0]["outcome"], "routed");
  EXPECT_EQ(r.json[1]["outcome"], "unknown");
  EXPECT_EQ(r.json[2]["outcome"], "not-hosted");
}

TEST_F(RouteDetails, TextOutputShowsLettersAndWarnings) {
  const harness::RunResult r =
      harness::run({chainmail_bin().string(), "route", "--config", config_->path().string(), "joe@pydis.wtf",
                    "mallory@pydis.wtf", "nobody@pydis.wtf"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("joe@pydis.wtf: routed\n  -> forward joe@jb3.dev\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("b. forward"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  warning: uid=mallory,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nobody@pydis.wtf: unknown: no rule matched nobody@pydis.wtf"), std::string::npos)
      << r.out;
}

// Quoted local parts whose detail holds a comma, a space or an '@': whatever the chain decides, every target
// must be one address. A target like `alice+x,bob@localhost` is two recipients to Postfix (a socketmap /
// virtual_alias_maps result is a comma-separated list), i.e. mail from anyone to bob's mailbox.
//
// A quoted local part can carry a detail with a comma, a space or an "@". Targets are built from the detail
// and the socketmap reply is comma-separated, so such a detail must never reach a target: the router drops it
// (with a warning) and delivers to the base address.
TEST_F(RouteDetails, QuotedDetailNeverYieldsAMalformedTarget) {
  const std::vector<std::string> addresses = {
      R"("alice+x,bob"@pydis.wtf)",          R"("alice+a b"@pydis.wtf)",
      R"("alice+x@evil.example"@pydis.wtf)", R"("fortune+x,bob"@int.pydis.wtf)",
      R"("dmarc+a b"@int.pydis.wtf)",        R"("joe+x,bob"@pydis.wtf)",
  };
  const RouteRun r = route(config_->path(), addresses);
  ASSERT_TRUE(r.json.is_array()) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), addresses.size());
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    EXPECT_NE(r.json[i].value("outcome", ""), "trouble") << r.json[i].dump(2);
    for (const auto& t : targets_of(r.json[i])) {
      EXPECT_TRUE(is_single_address(t.address)) << addresses[i] << " -> " << t;
    }
  }
}

// The LDIF directory (conf/chainmail-ldif.conf, same demo data, no server) routes every case exactly as the
// LDAP directory does: same outcomes, targets, paths and warnings.
TEST_F(RouteDetails, LdifDirectoryAgreesWithLdap) {
  std::vector<std::string> addresses;
  for (const auto& c : route_cases()) addresses.push_back(c.address);
  const RouteRun ldap = route(config_->path(), addresses);
  const RouteRun ldif = route(harness::source_dir() / "conf" / "chainmail-ldif.conf", addresses);
  EXPECT_EQ(ldif.run.exit_code, ldap.run.exit_code);
  EXPECT_EQ(ldif.run.err, "");
  ASSERT_TRUE(ldap.json.is_array()) << ldap.run.out;
  ASSERT_TRUE(ldif.json.is_array()) << ldif.run.out;
  ASSERT_EQ(ldif.json.size(), ldap.json.size());
  for (std::size_t i = 0; i < ldap.json.size(); ++i) EXPECT_EQ(ldif.json[i], ldap.json[i]) << addresses[i];
}

// The metacharacters reach slapd escaped (RFC 4515), as slapd's own stats log shows, and change nothing:
// nothing matches and the server keeps answering.
TEST_F(RouteDetails, FilterMetacharactersArriveEscaped) {
  const RouteRun r = route(config_->path(), {"a*b@pydis.wtf", R"("x)(uid=*"@pydis.wtf)",
                                             R"("back\\slash"@pydis.wtf)", "alice@pydis.wtf"});
  EXPECT_EQ(r.run.exit_code, 1) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), 4U) << r.run.out;
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.json[i]["outcome"], "unknown") << r.json[i].dump(2);
    EXPECT_TRUE(r.json[i]["targets"].empty()) << r.json[i].dump(2);
  }
  EXPECT_EQ(r.json[3]["outcome"], "routed");

  // slapd writes hex escapes in upper case; lower-case the log so either spelling matches.
  const std::vector<std::string> wanted = {
      R"x(filter="(mail=a\2ab@pydis.wtf)")x",
      R"x(filter="(cn=a\2ab)")x",
      R"x(filter="(mail=x\29\28uid=\2a@pydis.wtf)")x",
      R"x(filter="(mail=back\5cslash@pydis.wtf)")x",
  };
  std::string log;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto all_logged = [&] {
    log = read_text(slapd().log_path());
    for (char& ch : log) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (const auto& w : wanted) {
      if (log.find(w) == std::string::npos) return false;
    }
    return true;
  };
  while (!all_logged() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const auto& w : wanted)
    EXPECT_NE(log.find(w), std::string::npos) << w << " not in " << slapd().log_path();
  EXPECT_EQ(log.find("(mail=a*b@"), std::string::npos);
  EXPECT_EQ(log.find("uid=*"), std::string::npos);
}

}  // namespace
}  // namespace chainmail::integration
