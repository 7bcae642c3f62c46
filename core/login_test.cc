// login_test.cc - parse_login, expand_login_filter and expand_user_template (core/login.h).
#include "core/login.h"

#include <gtest/gtest.h>

namespace chainmail {
namespace {

LoginDomains domains() {
  return {"pydis.wtf", {"pydis.com", "owlcorp.uk"}, "int.pydis.wtf", "localhost"};
}

struct Case {
  std::string_view text;
  std::string_view uid;  // empty: refused
  std::string_view address;
};

TEST(ParseLogin, Forms) {
  const Case cases[] = {
      {"alice", "alice", "alice@pydis.wtf"},
      {"ALICE", "alice", "alice@pydis.wtf"},
      {"alice@pydis.wtf", "alice", "alice@pydis.wtf"},
      {"Alice@PYDIS.WTF", "alice", "alice@pydis.wtf"},
      {"alice@pydis.com", "alice", "alice@pydis.wtf"},
      {"alice@OwlCorp.UK", "alice", "alice@pydis.wtf"},
      {"fortune@int.pydis.wtf", "fortune", "fortune@int.pydis.wtf"},
      {"alice@localhost", "alice", "alice@pydis.wtf"},
      {"*)(uid=*", "*)(uid=*", "*)(uid=*@pydis.wtf"},  // kept literal: escaped in the filter
      {"", "", ""},
      {"alice@example.org", "", ""},
      {"alice@pydis.wtf.evil", "", ""},
      {"@pydis.wtf", "", ""},
      {"a@b@pydis.wtf", "", ""},
      {"alice bob", "", ""},
      {std::string_view("al\0ce", 5), "", ""},
      {"al\tice", "", ""},
      {"alice@", "", ""},
  };
  for (const auto& c : cases) {
    const LoginParse got = parse_login(c.text, domains(), 64);
    if (c.uid.empty()) {
      EXPECT_FALSE(got.login) << "login \"" << c.text << "\": got uid " << got.login->uid << ", want refused";
      EXPECT_FALSE(got.error.empty()) << c.text;
    } else {
      ASSERT_TRUE(got.login) << "login \"" << c.text << "\": refused (" << got.error << ")";
      EXPECT_EQ(got.login->uid, c.uid) << c.text;
      EXPECT_EQ(got.login->address, c.address) << c.text;
    }
  }
}

TEST(ParseLogin, LengthBound) {
  const std::string at_limit(16, 'a');
  EXPECT_TRUE(parse_login(at_limit, domains(), 16).login);
  const LoginParse over = parse_login(at_limit + "a", domains(), 16);
  EXPECT_FALSE(over.login);
  EXPECT_NE(over.error.find("longer"), std::string::npos) << over.error;
}

TEST(ParseLogin, NoInternalOrMailboxDomain) {
  const LoginDomains plain{"pydis.wtf", {}, "", ""};
  EXPECT_FALSE(parse_login("fortune@int.pydis.wtf", plain, 64).login);
  EXPECT_FALSE(parse_login("alice@localhost", plain, 64).login);
  EXPECT_FALSE(parse_login("alice@", plain, 64).login);
}

TEST(ExpandLoginFilter, EscapesEveryValue) {
  const std::string_view tmpl = "(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%s)))";
  EXPECT_EQ(expand_login_filter(tmpl, Login{"alice", "alice@pydis.wtf"}),
            "(&(objectClass=inetOrgPerson)(|(uid=alice)(mail=alice@pydis.wtf)))");
  EXPECT_EQ(
      expand_login_filter(tmpl, Login{"*)(uid=*", "*)(uid=*@pydis.wtf"}),
      "(&(objectClass=inetOrgPerson)(|(uid=\\2a\\29\\28uid=\\2a)(mail=\\2a\\29\\28uid=\\2a@pydis.wtf)))");
  EXPECT_EQ(expand_login_filter("(x=%%%u%q)", Login{"a\\b", ""}), "(x=%a\\5cb%q)");
  EXPECT_EQ(expand_login_filter("(x=%", Login{"a", ""}), "(x=%");
}

TEST(ExpandUserTemplate, Substitutes) {
  EXPECT_EQ(expand_user_template("/var/vmail/%d/%u", "alice", "pydis.wtf"), "/var/vmail/pydis.wtf/alice");
  EXPECT_EQ(expand_user_template("maildir:~/Maildir", "alice", "pydis.wtf"), "maildir:~/Maildir");
  EXPECT_EQ(expand_user_template("100%%-%x%", "a", "d"), "100%-%x%");
}

}  // namespace
}  // namespace chainmail
