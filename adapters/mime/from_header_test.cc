// from_header_test.cc - author addresses as DMARC needs them.
#include "adapters/mime/from_header.h"

#include <gtest/gtest.h>

namespace chainmail {
namespace {

std::vector<std::string> domains(std::string_view value) {
  std::vector<std::string> out;
  for (const auto& a : parse_from(value)) out.push_back(a.domain);
  return out;
}

TEST(FromHeader, FindsTheAuthorDomainInEveryCommonForm) {
  init_mime();
  using V = std::vector<std::string>;
  EXPECT_EQ(domains(" alice@example.org"), V{"example.org"});
  EXPECT_EQ(domains(" Alice <alice@example.org>"), V{"example.org"});
  EXPECT_EQ(domains(" \"Doe, Alice\" <alice@example.org> (work)"), V{"example.org"});
  EXPECT_EQ(domains(" =?utf-8?q?Al=C3=AFce?= <alice@Example.ORG>"), V{"Example.ORG"});
  EXPECT_EQ(domains(" \"a@evil.example\" <alice@example.org>"), V{"example.org"});
  EXPECT_EQ(domains("\r\n\tAlice\r\n <alice@example.org>"), V{"example.org"});
}

TEST(FromHeader, ReportsEveryAuthorSoSeveralCanBeRefused) {
  init_mime();
  EXPECT_EQ(parse_from(" a@one.example, b@two.example").size(), 2U);
  EXPECT_EQ(parse_from(" team: a@one.example, b@two.example;").size(), 2U);
  EXPECT_TRUE(parse_from(" undisclosed-recipients:;").empty());
  EXPECT_TRUE(parse_from("").empty());
}

}  // namespace
}  // namespace chainmail
