// record_test.cc - DMARC record selection and parsing (RFC 7489 6.3, 6.6.3).
#include "adapters/dmarc/record.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chainmail::dmarc {
namespace {

TEST(DmarcRecord, RecognisesTheVersionTag) {
  const std::vector<std::string> yes = {"v=DMARC1",           "v=DMARC1;",
                                        "v=DMARC1; p=none",   " v = DMARC1 ;p=none",
                                        "V=dmarc1; p=reject", "v=DMARC1\t; p=none"};
  for (const auto& t : yes) EXPECT_TRUE(is_dmarc_record(t)) << t;
  const std::vector<std::string> no = {"",          "v=spf1 -all", "p=reject; v=DMARC1", "v=DMARC10; p=none",
                                       "v=DMARC1x", "v:DMARC1",    "x v=DMARC1",         "v=DMARC; p=none"};
  for (const auto& t : no) EXPECT_FALSE(is_dmarc_record(t)) << t;
}

TEST(DmarcRecord, ParsesTagsWithDefaults) {
  struct Case {
    std::string txt;
    Policy p;
    std::optional<Policy> sp;
    bool adkim_strict, aspf_strict;
    int pct;
  };
  const std::vector<Case> cases = {
      {"v=DMARC1; p=none", Policy::none, std::nullopt, false, false, 100},
      {"v=DMARC1; p=Reject; sp=quarantine; adkim=s; aspf=S; pct=20", Policy::reject, Policy::quarantine, true,
       true, 20},
      {"v=DMARC1;p=quarantine;pct=0", Policy::quarantine, std::nullopt, false, false, 0},
      // Bad optional values fall back to their defaults (RFC 7489 6.3).
      {"v=DMARC1; p=reject; adkim=x; aspf=strict; pct=101", Policy::reject, std::nullopt, false, false, 100},
      {"v=DMARC1; p=reject; pct=abc; pct=5", Policy::reject, std::nullopt, false, false,
       100},  // first counts
      {"v=DMARC1; p=reject; p=none", Policy::reject, std::nullopt, false, false, 100},
      // Unknown tags, junk parts and libopendmarc's rf=iodef trap are ignored.
      {"v=DMARC1; p=reject; rf=iodef; fo=1; ri=3600; x-new=1; junk; ;", Policy::reject, std::nullopt, false,
       false, 100},
      {"v=DMARC1; p = none ; sp = reject ", Policy::none, Policy::reject, false, false, 100},
  };
  for (const auto& c : cases) {
    const auto r = parse_record(c.txt);
    ASSERT_TRUE(r.record) << c.txt << ": " << r.error;
    EXPECT_EQ(r.record->p, c.p) << c.txt;
    EXPECT_EQ(r.record->sp, c.sp) << c.txt;
    EXPECT_EQ(r.record->adkim_strict, c.adkim_strict) << c.txt;
    EXPECT_EQ(r.record->aspf_strict, c.aspf_strict) << c.txt;
    EXPECT_EQ(r.record->pct, c.pct) << c.txt;
    EXPECT_FALSE(r.record->p_replaced) << c.txt;
  }
}

TEST(DmarcRecord, InvalidPolicyIsAnErrorUnlessRuaIsValid) {
  const std::vector<std::string> errors = {
      "v=DMARC1",
      "v=DMARC1; p=",
      "v=DMARC1; p=r",  // libopendmarc would take any prefix of "reject"
      "v=DMARC1; p=bogus",
      "v=DMARC1; p=reject; sp=bogus",
      "v=DMARC1; p=bogus; rua=not a uri",
      "v=DMARC1; p=bogus; rua=:nothing",
      "v=spf1 -all",
      "v=DMARC1; p=reject; " + std::string(kMaxRecord, 'x'),
  };
  for (const auto& t : errors) {
    const auto r = parse_record(t);
    EXPECT_FALSE(r.record) << t;
    EXPECT_FALSE(r.error.empty()) << t;
  }
  const std::vector<std::string> as_none = {
      "v=DMARC1; p=bogus; rua=mailto:dmarc@example.org",
      "v=DMARC1; rua=bad, mailto:dmarc@example.org!10m",
      "v=DMARC1; p=reject; sp=bogus; rua=https://example.org/dmarc",
  };
  for (const auto& t : as_none) {
    const auto r = parse_record(t);
    ASSERT_TRUE(r.record) << t;
    EXPECT_EQ(r.record->p, Policy::none) << t;
    EXPECT_EQ(r.record->sp, Policy::none) << t;
    EXPECT_TRUE(r.record->p_replaced) << t;
  }
}

TEST(DmarcRecord, CanonicalFormKeepsOnlyWhatEvaluationUses) {
  const auto r =
      parse_record("v=DMARC1; p=REJECT; sp=none; aspf=s; pct=50; rua=mailto:x@example.org; rf=iodef");
  ASSERT_TRUE(r.record);
  EXPECT_EQ(r.record->canonical(), "v=DMARC1; p=reject; sp=none; adkim=r; aspf=s; pct=50");
  const auto again = parse_record(r.record->canonical());
  ASSERT_TRUE(again.record);
  EXPECT_EQ(again.record->canonical(), r.record->canonical());
}

}  // namespace
}  // namespace chainmail::dmarc
