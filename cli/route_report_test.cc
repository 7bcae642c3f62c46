#include "cli/route_report.h"

#include <gtest/gtest.h>

namespace chainmail {
namespace {

TEST(RouteReport, JsonCarriesTargetsPathsAndWarnings) {
  RouteResult r;
  r.input = "postmaster@pydis.wtf";
  r.outcome = Outcome::routed;
  r.targets = {
      {TargetKind::mailbox,
       "alice@localhost",
       {{Rule::alias, "postmaster@pydis.wtf", "postmaster = devops"}, {Rule::user, "alice@pydis.wtf", ""}}}};
  r.warnings = {"member uid=gone does not exist; skipped"};
  const auto j = to_json(r);
  EXPECT_EQ(j["outcome"], "routed");
  ASSERT_EQ(j["targets"].size(), 1U);
  EXPECT_EQ(j["targets"][0]["kind"], "mailbox");
  EXPECT_EQ(j["targets"][0]["path"][0]["rule"], "alias");
  EXPECT_EQ(j["targets"][0]["path"][0]["letter"], "f");
  EXPECT_FALSE(j["targets"][0]["path"][1].contains("detail"));
  EXPECT_EQ(j["warnings"].size(), 1U);
}

TEST(RouteReport, JsonOfHostileInputStillDumps) {
  RouteResult r;
  r.input = std::string("\xff\xfe\0x", 4);
  r.outcome = Outcome::invalid;
  r.reason = "bad";
  EXPECT_NO_THROW((void)to_json(r).dump());
}

TEST(RouteReport, TroubleKindIsNamed) {
  RouteResult r;
  r.outcome = Outcome::trouble;
  r.trouble = Trouble::configuration("bind refused");
  r.reason = "bind refused";
  EXPECT_EQ(to_json(r)["trouble"], "configuration");
}

}  // namespace
}  // namespace chainmail
