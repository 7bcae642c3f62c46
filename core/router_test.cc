// Every rule and priority of the ordered chain, against a fake directory.
#include "core/router.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace chainmail {
namespace {

constexpr std::string_view kUsers = "cn=users,cn=accounts,dc=t";
constexpr std::string_view kGroups = "cn=groups,cn=accounts,dc=t";
std::string user_dn(const std::string& uid) {
  return "uid=" + uid + "," + std::string(kUsers);
}
std::string group_dn(const std::string& cn) {
  return "cn=" + cn + "," + std::string(kGroups);
}

class FakeDirectory : public Directory {
 public:
  void user(const std::string& uid, std::vector<std::string> mail, std::vector<std::string> forward = {}) {
    entries_[ascii_lower(user_dn(uid))] = std::make_shared<const Entry>(
        Entry{user_dn(uid), uid, std::move(mail), std::move(forward), {}, false, users_are_users});
  }
  void group(const std::string& cn, std::vector<std::string> member_dns) {
    entries_[ascii_lower(group_dn(cn))] =
        std::make_shared<const Entry>(Entry{group_dn(cn), "", {}, {}, std::move(member_dns), false, false});
  }
  std::set<std::string> failing;  // keys ("mail:x", "group:x", "dn:x") that answer trouble
  int calls = 0;
  bool users_are_users = true;  // Entry::is_user for users added from now on

  Lookup<EntryPtr> user_by_mail(std::string_view address) override {
    ++calls;
    if (failing.count("mail:" + ascii_lower(address)) != 0)
      return Lookup<EntryPtr>::trouble(Trouble::temporary("down"));
    for (const auto& [dn, e] : entries_) {
      for (const auto& m : e->mail) {
        if (iequals(m, address)) return Lookup<EntryPtr>::found(e);
      }
    }
    return Lookup<EntryPtr>::not_found();
  }
  Lookup<EntryPtr> group_by_name(std::string_view name) override {
    ++calls;
    if (failing.count("group:" + ascii_lower(name)) != 0)
      return Lookup<EntryPtr>::trouble(Trouble::temporary("down"));
    const auto it = entries_.find(ascii_lower(group_dn(std::string(name))));
    return it == entries_.end() ? Lookup<EntryPtr>::not_found() : Lookup<EntryPtr>::found(it->second);
  }
  Lookup<EntryPtr> entry_by_dn(std::string_view dn) override {
    ++calls;
    if (failing.count("dn:" + ascii_lower(dn)) != 0)
      return Lookup<EntryPtr>::trouble(Trouble::temporary("down"));
    const auto it = entries_.find(ascii_lower(dn));
    return it == entries_.end() ? Lookup<EntryPtr>::not_found() : Lookup<EntryPtr>::found(it->second);
  }

 private:
  std::map<std::string, EntryPtr> entries_;
};

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() : config_(default_config()) {
    config_.directory.ldif_file = "unused";
    config_.transport = {{"fortune@int.pydis.wtf", {"fortune"}}, {"fredrick@pydis.wtf", {"fredrick"}}};
    config_.aliases = {
        {"postmaster", {"devops"}}, {"abuse", {"devops"}},
        {"staff", {"alice"}},       {"loop1", {"loop2"}},
        {"loop2", {"loop1"}},       {"both@pydis.com", {"alice", "bob@pydis.wtf", "alice@pydis.wtf"}},
        {"nowhere", {"ghost"}},     {"outside", {"someone@example.net"}}};
    dir_.user("alice", {"alice@pydis.wtf"});
    dir_.user("bob", {"bob@pydis.wtf"});
    dir_.user("joe", {"joe@pydis.wtf"}, {"joe@jb3.dev"});
    dir_.user("Dave", {"Dave@pydis.wtf"});
    dir_.user("fredrick", {"fredrick@pydis.wtf"});
    dir_.user("dmarc", {"dmarc@int.pydis.wtf"});
    dir_.user("nomail", {});
    dir_.user("bounce", {"bounce@pydis.wtf"}, {"bob@pydis.wtf"});  // forwards to a hosted address
    dir_.group("devops", {user_dn("alice"), user_dn("joe"), group_dn("admins")});
    dir_.group("admins", {user_dn("bob"), user_dn("alice")});
    dir_.group("cycle-a", {group_dn("cycle-b"), user_dn("alice")});
    dir_.group("cycle-b", {group_dn("cycle-a"), user_dn("bob")});
    dir_.group("ghosts", {user_dn("gone1"), user_dn("gone2")});
    dir_.group("nomail-team", {user_dn("nomail")});
    dir_.group("staff", {user_dn("bob")});
    dir_.group("dmarc", {user_dn("alice")});  // a group named like a service account wins (d before e)
    dir_.group("outsiders", {"uid=ext," + std::string(kUsers)});
  }
  RouteResult route(const std::string& a) { return Router(config_, dir_).route(a); }

  Config config_;
  FakeDirectory dir_;
};

std::vector<std::string> addresses(const RouteResult& r) {
  std::vector<std::string> out;
  for (const auto& t : r.targets) out.push_back(std::string(target_kind_name(t.kind)) + ":" + t.address);
  return out;
}

struct Case {
  std::string input;
  Outcome outcome;
  std::vector<std::string> targets;
  std::string last_rule;  // the rule that decided the first target
};

TEST_F(RouterTest, OrderedChain) {
  const std::vector<Case> cases = {
      // a. transport rule, and it wins over a directory user with the same address.
      {"fortune@int.pydis.wtf", Outcome::routed, {"service:fortune@service-mail.localhost"}, "transport"},
      {"fredrick@pydis.wtf", Outcome::routed, {"service:fredrick@service-mail.localhost"}, "transport"},
      {"fredrick+x@pydis.com", Outcome::routed, {"service:fredrick+x@service-mail.localhost"}, "transport"},
      // b. forwarding address, which wins over local delivery.
      {"joe@pydis.wtf", Outcome::routed, {"forward:joe@jb3.dev"}, "external"},
      {"joe+lists@pydis.wtf", Outcome::routed, {"forward:joe+lists@jb3.dev"}, "external"},
      {"bounce@pydis.wtf", Outcome::routed, {"mailbox:bob@localhost"}, "user"},
      // c. local user, with domain aliases and case.
      {"alice@pydis.wtf", Outcome::routed, {"mailbox:alice@localhost"}, "user"},
      {"ALICE@PyDis.Com", Outcome::routed, {"mailbox:alice@localhost"}, "user"},
      {"dave@owlcorp.uk", Outcome::routed, {"mailbox:Dave@localhost"}, "user"},
      {"alice+x@pythondiscord.com", Outcome::routed, {"mailbox:alice+x@localhost"}, "user"},
      // d. groups: members routed again, nested groups, duplicates once, +detail through the group.
      {"devops@pydis.wtf",
       Outcome::routed,
       {"mailbox:alice@localhost", "forward:joe@jb3.dev", "mailbox:bob@localhost"},
       "user"},
      {"devops+alerts@pydis.wtf",
       Outcome::routed,
       {"mailbox:alice+alerts@localhost", "forward:joe+alerts@jb3.dev", "mailbox:bob+alerts@localhost"},
       "user"},
      {"cycle-a@pydis.wtf", Outcome::routed, {"mailbox:bob@localhost", "mailbox:alice@localhost"}, "user"},
      {"dmarc@int.pydis.wtf", Outcome::routed, {"mailbox:alice@localhost"}, "user"},
      // e. service account on the internal domain, keeping the detail.
      {"dmarc+reports@int.pydis.wtf", Outcome::routed, {"mailbox:alice+reports@localhost"}, "user"},
      // f. aliases: bare keys on every hosted domain, address keys, several targets, external targets.
      {"postmaster@pydis.wtf",
       Outcome::routed,
       {"mailbox:alice@localhost", "forward:joe@jb3.dev", "mailbox:bob@localhost"},
       "user"},
      {"abuse@owlcorp.uk",
       Outcome::routed,
       {"mailbox:alice@localhost", "forward:joe@jb3.dev", "mailbox:bob@localhost"},
       "user"},
      {"both@pydis.wtf", Outcome::routed, {"mailbox:alice@localhost", "mailbox:bob@localhost"}, "user"},
      {"outside@pydis.wtf", Outcome::routed, {"forward:someone@example.net"}, "external"},
      // An alias named like a group: the group (d) comes first.
      {"staff@pydis.wtf", Outcome::routed, {"mailbox:bob@localhost"}, "user"},
      // Groups that yield nothing do not match; nothing later matches either.
      {"ghosts@pydis.wtf", Outcome::unknown, {}, ""},
      {"nomail-team@pydis.wtf", Outcome::unknown, {}, ""},
      // g. unknown; aliases that lead nowhere and alias cycles are unknown too, never accepted empty.
      {"nobody@pydis.wtf", Outcome::unknown, {}, ""},
      {"nowhere@pydis.wtf", Outcome::unknown, {}, ""},
      {"loop1@pydis.wtf", Outcome::unknown, {}, ""},
      {"alice@int.pydis.wtf", Outcome::unknown, {}, ""},
      // A detail that is not a dot-atom is dropped: it must never turn into a second recipient.
      {"\"alice+x,bob\"@pydis.wtf", Outcome::routed, {"mailbox:alice@localhost"}, "user"},
      {"\"fortune+a b\"@int.pydis.wtf",
       Outcome::routed,
       {"service:fortune@service-mail.localhost"},
       "transport"},
      {"\"devops+x@evil.example\"@pydis.wtf",
       Outcome::routed,
       {"mailbox:alice@localhost", "forward:joe@jb3.dev", "mailbox:bob@localhost"},
       "user"},
      // Not ours, and not an address.
      {"alice@example.org", Outcome::not_hosted, {}, ""},
      {"not an address", Outcome::invalid, {}, ""},
  };
  for (const auto& c : cases) {
    const auto r = route(c.input);
    EXPECT_EQ(outcome_name(r.outcome), outcome_name(c.outcome)) << c.input << ": " << r.reason;
    EXPECT_EQ(addresses(r), c.targets) << c.input;
    if (!c.last_rule.empty() && !r.targets.empty()) {
      ASSERT_FALSE(r.targets.front().path.empty()) << c.input;
      EXPECT_EQ(rule_name(r.targets.front().path.back().rule), c.last_rule) << c.input;
    }
    if (r.outcome != Outcome::routed) {
      EXPECT_FALSE(r.reason.empty()) << c.input;
    }
  }
}

TEST_F(RouterTest, WithoutExplanationTheTargetsAreTheSame) {
  for (const char* a : {"devops+x@pydis.com", "postmaster@owlcorp.uk", "cycle-a@pydis.wtf", "joe@pydis.wtf",
                        "dmarc+reports@int.pydis.wtf", "fortune@int.pydis.wtf", "ghosts@pydis.wtf"}) {
    const Router router(config_, dir_);
    const auto full = router.route(a, Router::Explain::yes);
    const auto lean = router.route(a, Router::Explain::no);
    EXPECT_EQ(addresses(lean), addresses(full)) << a;
    EXPECT_EQ(lean.outcome, full.outcome) << a;
    EXPECT_EQ(lean.warnings, full.warnings) << a;
    for (const auto& t : lean.targets) EXPECT_TRUE(t.path.empty()) << a;
  }
}

TEST_F(RouterTest, PathNamesEveryRule) {
  const auto r = route("postmaster@pydis.com");
  ASSERT_EQ(r.outcome, Outcome::routed);
  std::vector<std::string> rules;
  for (const auto& s : r.targets.back().path) rules.emplace_back(rule_name(s.rule));
  // postmaster@pydis.com -> (domain alias) -> alias -> devops group -> nested admins -> bob -> user
  EXPECT_EQ(rules, (std::vector<std::string>{"domain-alias", "alias", "group", "group", "member", "user"}));
}

TEST_F(RouterTest, CycleEndsWithOneWarning) {
  const auto r = route("cycle-a@pydis.wtf");
  int cycles = 0;
  for (const auto& w : r.warnings) cycles += w.find("cycle:") != std::string::npos ? 1 : 0;
  EXPECT_EQ(cycles, 1);
  const auto loop = route("loop1@pydis.wtf");
  cycles = 0;
  for (const auto& w : loop.warnings) cycles += w.find("cycle:") != std::string::npos ? 1 : 0;
  EXPECT_EQ(cycles, 1);
}

TEST_F(RouterTest, DanglingMembersAreWarnedAbout) {
  dir_.group("mixed", {user_dn("gone"), user_dn("alice")});
  const auto r = route("mixed@pydis.wtf");
  EXPECT_EQ(addresses(r), std::vector<std::string>{"mailbox:alice@localhost"});
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings.front().find("does not exist"), std::string::npos);
}

TEST_F(RouterTest, TroubleIsNeverUnknown) {
  for (const std::string& key : std::vector<std::string>{"mail:alice@pydis.wtf", "group:devops",
                                                         "dn:" + ascii_lower(user_dn("bob"))}) {
    dir_.failing = {key};
    const std::string input = key.rfind("mail:", 0) == 0 ? "alice@pydis.wtf" : "devops@pydis.wtf";
    const auto r = route(input);
    EXPECT_EQ(r.outcome, Outcome::trouble) << key;
    ASSERT_TRUE(r.trouble.has_value()) << key;
    EXPECT_EQ(r.trouble->kind, Trouble::Kind::temporary);
    EXPECT_TRUE(r.targets.empty()) << "no partial answer on trouble: " << key;
  }
  // A lookup failing for an address that would be unknown is trouble too.
  dir_.failing = {"group:nobody"};
  EXPECT_EQ(route("nobody@pydis.wtf").outcome, Outcome::trouble);
}

TEST_F(RouterTest, LimitsAreTroubleNotHangs) {
  // A chain of 30 nested groups, deeper than max_depth.
  for (int i = 0; i < 30; ++i)
    dir_.group(std::string("deep") + std::to_string(i),
               {group_dn(std::string("deep") + std::to_string(i + 1))});
  dir_.group("deep30", {user_dn("alice")});
  config_.routing.max_depth = 10;
  auto r = route("deep0@pydis.wtf");
  EXPECT_EQ(r.outcome, Outcome::trouble);
  EXPECT_EQ(r.trouble->kind, Trouble::Kind::configuration);
  config_.routing.max_depth = 100;
  EXPECT_EQ(route("deep0@pydis.wtf").outcome, Outcome::routed);

  std::vector<std::string> many;
  for (int i = 0; i < 50; ++i) {
    dir_.user(std::string("u") + std::to_string(i), {std::string("u") + std::to_string(i) + "@pydis.wtf"});
    many.push_back(user_dn(std::string("u") + std::to_string(i)));
  }
  dir_.group("big", many);
  config_.routing.max_expansion = 20;
  r = route("big@pydis.wtf");
  EXPECT_EQ(r.outcome, Outcome::trouble);
  EXPECT_NE(r.reason.find("max_expansion"), std::string::npos);
  config_.routing.max_expansion = 1000;
  EXPECT_EQ(route("big@pydis.wtf").targets.size(), 50U);
}

TEST_F(RouterTest, PlainUserCostsOneLookup) {
  dir_.calls = 0;
  route("alice@pydis.wtf");
  EXPECT_EQ(dir_.calls, 1);
}

TEST_F(RouterTest, GroupMembersAreNotLookedUpTwice) {
  // user_by_mail(admins) + group_by_name(admins) + entry_by_dn for bob and alice: the member entries
  // are the users, so their mail is routed without asking for them again.
  dir_.calls = 0;
  EXPECT_EQ(route("admins@pydis.wtf").targets.size(), 2U);
  EXPECT_EQ(dir_.calls, 4);

  // A directory that cannot promise it (e.g. a user filter narrower than mail) gets asked.
  dir_.users_are_users = false;
  dir_.user("bob", {"bob@pydis.wtf"});
  dir_.user("alice", {"alice@pydis.wtf"});
  dir_.calls = 0;
  EXPECT_EQ(route("admins@pydis.wtf").targets.size(), 2U);
  EXPECT_EQ(dir_.calls, 6);
}

TEST_F(RouterTest, DelimiterIsConfigurable) {
  config_.routing.recipient_delimiter = "-";
  EXPECT_EQ(addresses(route("alice-x@pydis.wtf")), std::vector<std::string>{"mailbox:alice-x@localhost"});
  EXPECT_EQ(route("alice+x@pydis.wtf").outcome, Outcome::unknown);
  config_.routing.recipient_delimiter = "";
  EXPECT_EQ(route("alice-x@pydis.wtf").outcome, Outcome::unknown);
}

TEST_F(RouterTest, NoInternalDomainMeansNotHosted) {
  config_.domains.internal = "";
  EXPECT_EQ(route("dmarc@int.pydis.wtf").outcome, Outcome::not_hosted);
}

}  // namespace
}  // namespace chainmail
