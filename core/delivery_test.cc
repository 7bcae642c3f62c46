// delivery_test.cc - unit tests for core/delivery: which group or alias led to a mailbox, folder name
// sanitising (table-driven, hostile names included), the folder template and the trace header text.
#include "core/delivery.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chainmail {
namespace {

Target mailbox(std::string address, std::vector<Step> path) {
  return Target{TargetKind::mailbox, std::move(address), std::move(path)};
}

RouteResult routed(std::vector<Target> targets) {
  RouteResult r;
  r.outcome = Outcome::routed;
  r.targets = std::move(targets);
  return r;
}

Step user_alice() {
  return {Rule::user, "alice@pydis.wtf", "uid=alice"};
}

TEST(FindVia, GroupMemberIsFiledUnderTheGroup) {
  const RouteResult r = routed({
      mailbox("bob@localhost",
              {{Rule::group, "devops@pydis.wtf", "cn=devops"}, {Rule::user, "bob@pydis.wtf", ""}}),
      mailbox("alice@localhost", {{Rule::group, "devops@pydis.wtf", "cn=devops"},
                                  {Rule::member, "alice@pydis.wtf", "uid=alice"},
                                  user_alice()}),
  });
  const auto via = find_via(r, "alice", "localhost", "+");
  ASSERT_TRUE(via);
  EXPECT_EQ(via->kind, ViaKind::group);
  EXPECT_EQ(via->name, "devops");
}

TEST(FindVia, OutermostRuleWinsAndDetailAndCaseAreIgnored) {
  const RouteResult r = routed({
      mailbox("Alice+x@LOCALHOST", {{Rule::domain_alias, "PostMaster+x@pydis.com", ""},
                                    {Rule::alias, "PostMaster+x@pydis.com", "devops"},
                                    {Rule::group, "devops+x@pydis.wtf", "cn=devops"},
                                    user_alice()}),
  });
  const auto via = find_via(r, "alice", "localhost", "+");
  ASSERT_TRUE(via);
  EXPECT_EQ(via->kind, ViaKind::alias);
  EXPECT_EQ(via->name, "postmaster");
}

TEST(FindVia, DirectDeliveryIsUser) {
  const auto via = find_via(routed({mailbox("alice@localhost", {user_alice()})}), "alice", "localhost", "+");
  ASSERT_TRUE(via);
  EXPECT_EQ(via->kind, ViaKind::user);
  EXPECT_EQ(via->name, "");
}

TEST(FindVia, NoMatchingTargetDecidesNothing) {
  const RouteResult r = routed({
      mailbox("bob@localhost", {{Rule::group, "devops@pydis.wtf", ""}}),
      mailbox("alice@elsewhere", {{Rule::group, "devops@pydis.wtf", ""}}),
      Target{TargetKind::forward, "alice@localhost", {{Rule::group, "devops@pydis.wtf", ""}}},
  });
  EXPECT_FALSE(find_via(r, "alice", "localhost", "+"));
  EXPECT_FALSE(find_via(r, "ali", "localhost", "+"));
}

TEST(FindVia, UnroutedOutcomesDecideNothing) {
  for (Outcome o : {Outcome::unknown, Outcome::not_hosted, Outcome::invalid, Outcome::trouble}) {
    RouteResult r = routed({mailbox("alice@localhost", {{Rule::group, "devops@pydis.wtf", ""}})});
    r.outcome = o;
    EXPECT_FALSE(find_via(r, "alice", "localhost", "+")) << outcome_name(o);
  }
}

TEST(SanitizeFolderName, Table) {
  struct Case {
    std::string name;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"devops", true},
      {"Dev Ops", true},
      {"team-infra_2", true},
      {"a+b@c", true},
      {std::string(100, 'x'), true},
      {std::string(101, 'x'), false},
      {"", false},
      {".", false},
      {"..", false},
      {"../../etc", false},
      {".hidden", false},
      {"a.b", false},
      {"a/b", false},
      {"/abs", false},
      {"a\\b", false},
      {"new\nline", false},
      {"tab\there", false},
      {std::string("nul\0x", 5), false},
      {"del\x7f", false},
      {"%", false},
      {"star*", false},
      {"&AOQ-", false},
      {"~root", false},
      {"quote\"", false},
      {" lead", false},
      {"trail ", false},
      {"INBOX", false},
      {"inbox", false},
      {"caf\xc3\xa9", false},
  };
  for (const Case& c : cases) {
    const auto got = sanitize_folder_name(c.name, 100);
    EXPECT_EQ(got.has_value(), c.ok) << "name \"" << c.name << "\"";
    if (got) {
      EXPECT_EQ(*got, c.name);
    }
  }
}

Config::Lmtp lmtp(std::string tmpl, std::int64_t max = 100) {
  Config::Lmtp l;
  l.folder_template = std::move(tmpl);
  l.trace_header = "X-Chainmail-Route";
  l.max_folder_length = max;
  return l;
}

TEST(FolderFor, Table) {
  struct Case {
    Via via;
    std::string tmpl;
    std::int64_t max;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{ViaKind::group, "devops"}, "%n", 100, "devops"},
      {{ViaKind::alias, "postmaster"}, "%n", 100, "postmaster"},
      {{ViaKind::group, "devops"}, "Groups/%n", 100, "Groups/devops"},
      {{ViaKind::group, "devops"}, "100%% %n", 100, "100% devops"},
      {{ViaKind::user, ""}, "%n", 100, "INBOX"},
      {{ViaKind::group, "devops"}, "", 100, "INBOX"},
      {{ViaKind::group, "../x"}, "%n", 100, "INBOX"},
      {{ViaKind::group, "a.b"}, "Lists/%n", 100, "INBOX"},
      {{ViaKind::group, "devops"}, "Groups/%n", 10, "INBOX"},  // name fits, the result does not
      {{ViaKind::group, std::string(20, 'g')}, "%n", 10, "INBOX"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(folder_for(c.via, lmtp(c.tmpl, c.max)), c.want) << c.via.name << " / " << c.tmpl;
  }
}

TEST(TraceValue, Formats) {
  EXPECT_EQ(trace_value("devops@pydis.wtf", {ViaKind::group, "devops"}, "alice"),
            "devops@pydis.wtf -> group devops -> alice");
  EXPECT_EQ(trace_value("postmaster@pydis.com", {ViaKind::alias, "postmaster"}, "alice"),
            "postmaster@pydis.com -> alias postmaster -> alice");
  EXPECT_EQ(trace_value("alice@pydis.wtf", {}, "alice"), "alice@pydis.wtf -> user -> alice");
}

TEST(TraceValue, StaysOnOneLineAndBounded) {
  const std::string v = trace_value("evil@x\r\nX-Chainmail-Route: forged", {ViaKind::group, "a\nb"}, "alice");
  EXPECT_EQ(v.find('\r'), std::string::npos);
  EXPECT_EQ(v.find('\n'), std::string::npos);
  EXPECT_EQ(v, "evil@x??X-Chainmail-Route: forged -> group a?b -> alice");
  const std::string long_value = trace_value(std::string(5000, 'a'), {}, "alice");
  EXPECT_EQ(long_value.size(), kMaxTraceOriginal + std::string(" -> user -> alice").size());
}

}  // namespace
}  // namespace chainmail
