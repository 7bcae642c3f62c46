// dmarc_json_test.cc - the shape of `chainmail dmarc --json`.
#include "cli/dmarc_json.h"

#include <gtest/gtest.h>

namespace chainmail {
namespace {

TEST(DmarcJson, Shape) {
  ReportRow r;
  r.org_name = "google.com";
  r.report_id = "42";
  r.begin = 1700006400;
  r.end = 1700092799;
  r.domain = "example.com";
  r.policy = "none";
  r.messages = 3;
  r.dmarc_pass = 2;
  r.dmarc_fail = 1;
  const SourceKey key{"192.0.2.1", "example.com", "none", "pass", "fail"};
  SourceRow s;
  s.key = &key;
  s.messages = 3;
  s.reports = 1;
  s.ptr = "mx.example.com";
  const DmarcTotals totals{1, 3, 0, 2, 1};

  const auto j = dmarc_to_json({r}, {s}, DmarcView::All, true, totals);
  ASSERT_TRUE(j["reports"].is_array());
  ASSERT_EQ(j["reports"].size(), 1U);
  EXPECT_EQ(j["reports"][0]["org"], "google.com");
  EXPECT_EQ(j["reports"][0]["report_id"], "42");
  EXPECT_EQ(j["reports"][0]["begin"], 1700006400);
  EXPECT_EQ(j["reports"][0]["begin_utc"], "2023-11-15 00:00:00");
  EXPECT_EQ(j["reports"][0]["messages"], 3);
  EXPECT_EQ(j["reports"][0]["dmarc_fail"], 1);
  ASSERT_EQ(j["sources"].size(), 1U);
  EXPECT_EQ(j["sources"][0]["source_ip"], "192.0.2.1");
  EXPECT_EQ(j["sources"][0]["spf"], "fail");
  EXPECT_EQ(j["sources"][0]["ptr"], "mx.example.com");
  EXPECT_EQ(j["totals"]["filtered"], 2);
  EXPECT_EQ(j["totals"]["bad"], 1);

  const auto no_ptr = dmarc_to_json({r}, {s}, DmarcView::Sources, false, totals);
  EXPECT_FALSE(no_ptr.contains("reports"));
  EXPECT_FALSE(no_ptr["sources"][0].contains("ptr"));
  const auto reports_only = dmarc_to_json({r}, {s}, DmarcView::Reports, false, totals);
  EXPECT_FALSE(reports_only.contains("sources"));
}

TEST(DmarcJson, InvalidUtf8IsReplacedNotThrown) {
  ReportRow r;
  r.org_name = "bad \xff\xfe";
  const auto j = dmarc_to_json({r}, {}, DmarcView::Reports, false, {});
  std::string out;
  EXPECT_NO_THROW(out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  EXPECT_NE(out.find("bad "), std::string::npos);
}

}  // namespace
}  // namespace chainmail
