#include "core/route_format.h"

#include <gtest/gtest.h>

namespace chainmail {
namespace {

RouteResult routed() {
  RouteResult r;
  r.input = "devops@pydis.wtf";
  r.outcome = Outcome::routed;
  r.targets = {{TargetKind::mailbox, "alice@localhost", {{Rule::group, "devops@pydis.wtf", "cn=devops"}}},
               {TargetKind::forward, "joe@jb3.dev", {{Rule::forward, "joe@pydis.wtf", "uid=joe"}}}};
  return r;
}

RouteResult with(Outcome o, std::optional<Trouble> t = std::nullopt) {
  RouteResult r;
  r.input = "x@pydis.wtf";
  r.outcome = o;
  r.trouble = std::move(t);
  r.reason = r.trouble ? r.trouble->reason : "why";
  return r;
}

TEST(RouteFormat, SocketmapReplies) {
  EXPECT_EQ(socketmap_reply(routed()), "OK alice@localhost,joe@jb3.dev");
  EXPECT_EQ(socketmap_reply(with(Outcome::unknown)), "NOTFOUND ");
  EXPECT_EQ(socketmap_reply(with(Outcome::not_hosted)), "NOTFOUND ");
  EXPECT_EQ(socketmap_reply(with(Outcome::invalid)), "NOTFOUND ");
  EXPECT_EQ(socketmap_reply(with(Outcome::trouble, Trouble::temporary("ldap down\r\n"))),
            "TEMP ldap down\\x0d\\x0a");
}

TEST(RouteFormat, ExitStatusTakesTheWorst) {
  const std::vector<std::pair<std::vector<RouteResult>, int>> cases = {
      {{routed()}, 0},
      {{routed(), with(Outcome::unknown)}, 1},
      {{with(Outcome::not_hosted)}, 1},
      {{with(Outcome::invalid), routed()}, 1},
      {{with(Outcome::unknown), with(Outcome::trouble, Trouble::temporary("t"))}, 75},
      {{with(Outcome::trouble, Trouble::configuration("c")), with(Outcome::trouble, Trouble::temporary("t"))},
       78},
  };
  for (const auto& [results, want] : cases) EXPECT_EQ(route_exit_status(results), want);
}

TEST(RouteFormat, TextShowsRulesAndNeverRawControlBytes) {
  const std::string text = render_text(routed());
  EXPECT_NE(text.find("d. group"), std::string::npos) << text;
  EXPECT_NE(text.find("b. forward"), std::string::npos) << text;
  EXPECT_NE(text.find("-> mailbox alice@localhost"), std::string::npos) << text;

  RouteResult evil = with(Outcome::invalid);
  evil.input = std::string("a\0b\x1b[31m\xff", 9);
  const std::string out = render_text(evil);
  for (const char c : out) {
    const auto u = static_cast<unsigned char>(c);
    EXPECT_TRUE(c == '\n' || (u >= 0x20 && u < 0x7f)) << "raw byte " << int(u);
  }
  EXPECT_EQ(sanitize("\x1b"), "\\x1b");
}

}  // namespace
}  // namespace chainmail
