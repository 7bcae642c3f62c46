#include "core/ldap_escape.h"

#include <gtest/gtest.h>

namespace chainmail {
namespace {

TEST(LdapEscape, FilterValuesPerRfc4515) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"joe@pydis.wtf", "joe@pydis.wtf"},
      {"*", "\\2a"},
      {"a(b)c", "a\\28b\\29c"},
      {"back\\slash", "back\\5cslash"},
      {std::string("nul\0byte", 8), "nul\\00byte"},
      {"\xc3\xa4", "\\c3\\a4"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(escape_filter_value(in), want) << in;
}

TEST(LdapEscape, DnValuesPerRfc4514) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"alice", "alice"},
      {"a,b", "a\\,b"},
      {"a+b=c", "a\\+b\\=c"},
      {" lead", "\\ lead"},
      {"trail ", "trail\\ "},
      {"#hash", "\\#hash"},
      {"mid#hash", "mid#hash"},
      {"q\"<>;\\", "q\\\"\\<\\>\\;\\\\"},
      {std::string("n\0l", 3), "n\\00l"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(escape_dn_value(in), want) << in;
}

TEST(LdapEscape, ExpandsFilterTemplates) {
  EXPECT_EQ(expand_filter("(mail=%s)", "joe@pydis.wtf"), "(mail=joe@pydis.wtf)");
  EXPECT_EQ(expand_filter("(&(uid=%u)(d=%d))", "joe@pydis.wtf"), "(&(uid=joe)(d=pydis.wtf))");
  EXPECT_EQ(expand_filter("(cn=%u)", "devops"), "(cn=devops)");
  EXPECT_EQ(expand_filter("(mail=%s)", "*)(uid=*"), "(mail=\\2a\\29\\28uid=\\2a)");
  EXPECT_EQ(expand_filter("(x=100%%)", "a@b"), "(x=100%)");
}

}  // namespace
}  // namespace chainmail
