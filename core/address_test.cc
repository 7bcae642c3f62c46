#include "core/address.h"

#include <gtest/gtest.h>

namespace chainmail {
namespace {

struct ParseCase {
  std::string input;
  bool ok;
  std::string local;
  std::string domain;
};

TEST(Address, ParsesPerRfc5321) {
  const std::vector<ParseCase> cases = {
      {"joe@pydis.wtf", true, "joe", "pydis.wtf"},
      {"<joe@pydis.wtf>", true, "joe", "pydis.wtf"},
      {"Joe.Bloggs@PyDis.WTF", true, "Joe.Bloggs", "pydis.wtf"},
      {"dmarc+reports@int.pydis.wtf", true, "dmarc+reports", "int.pydis.wtf"},
      {"a*b@pydis.wtf", true, "a*b", "pydis.wtf"},
      {"\"a(b)\\\\c\"@pydis.wtf", true, "a(b)\\c", "pydis.wtf"},
      {"\"with space\"@pydis.wtf", true, "with space", "pydis.wtf"},
      {"\"a\\\"q\"@pydis.wtf", true, "a\"q", "pydis.wtf"},
      {"user@[192.0.2.1]", true, "user", "[192.0.2.1]"},
      {"", false, "", ""},
      {"joe", false, "", ""},
      {"@pydis.wtf", false, "", ""},
      {"joe@", false, "", ""},
      {".joe@pydis.wtf", false, "", ""},
      {"jo..e@pydis.wtf", false, "", ""},
      {"joe.@pydis.wtf", false, "", ""},
      {"a(b)@pydis.wtf", false, "", ""},
      {"a b@pydis.wtf", false, "", ""},
      {std::string("a\0b@pydis.wtf", 13), false, "", ""},
      {std::string("\"a\0b\"@pydis.wtf", 15), false, "", ""},
      {"\"unterminated@pydis.wtf", false, "", ""},
      {"joe@-pydis.wtf", false, "", ""},
      {"joe@pydis..wtf", false, "", ""},
      {"joe@pydis_wtf.com", false, "", ""},
      {"joe@b\xc3\xa4r.de", false, "", ""},
      {std::string(64, 'a') + "@pydis.wtf", true, std::string(64, 'a'), "pydis.wtf"},
      {std::string(65, 'a') + "@pydis.wtf", false, "", ""},
      {"a@" + std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(63, 'd') + "." +
           std::string(63, 'e'),
       true, "a",
       std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(63, 'd') + "." +
           std::string(63, 'e')},
      {"a@" + std::string(64, 'b') + ".com", false, "", ""},
      {std::string(321, 'a'), false, "", ""},
  };
  for (const auto& c : cases) {
    const auto got = parse_address(c.input);
    EXPECT_EQ(got.address.has_value(), c.ok) << "input: " << c.input << " error: " << got.error;
    if (got.address && c.ok) {
      EXPECT_EQ(got.address->local, c.local) << c.input;
      EXPECT_EQ(got.address->domain, c.domain) << c.input;
    }
    if (!c.ok) {
      EXPECT_FALSE(got.error.empty()) << c.input;
    }
  }
}

TEST(Address, StrRequotesWhenNeeded) {
  EXPECT_EQ((Address{"joe", "pydis.wtf"}.str()), "joe@pydis.wtf");
  EXPECT_EQ((Address{"with space", "pydis.wtf"}.str()), "\"with space\"@pydis.wtf");
  EXPECT_EQ((Address{"a\"q\\", "x.org"}.str()), "\"a\\\"q\\\\\"@x.org");
  // Round trip through the parser.
  const Address odd{"a(b)\\c", "pydis.wtf"};
  EXPECT_EQ(parse_address(odd.str()).address, odd);
}

TEST(Address, SplitsDetailAtFirstDelimiter) {
  struct Case {
    std::string local, delims, base, detail;
  };
  const std::vector<Case> cases = {
      {"dmarc+reports", "+", "dmarc", "+reports"},
      {"a+b+c", "+", "a", "+b+c"},
      {"joe", "+", "joe", ""},
      {"+joe", "+", "+joe", ""},
      {"joe-x+y", "+-", "joe", "-x+y"},
      {"joe+x", "", "joe+x", ""},
  };
  for (const auto& c : cases) {
    const auto got = split_detail(c.local, c.delims);
    EXPECT_EQ(got.base, c.base) << c.local;
    EXPECT_EQ(got.detail, c.detail) << c.local;
  }
}

TEST(Address, CaseHelpers) {
  EXPECT_EQ(ascii_lower("PyDis.WTF"), "pydis.wtf");
  EXPECT_TRUE(iequals("Dave", "dAVE"));
  EXPECT_FALSE(iequals("dave", "davey"));
}

}  // namespace
}  // namespace chainmail
