// dmarc_report_test.cc - the aggregate report parser: both schemas, the schema rules, and hostile documents.
#include "core/dmarc_report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace chainmail {
namespace {

std::string report(std::string_view root_attrs, std::string_view record_body, std::string_view extra = "") {
  std::string out = "<?xml version=\"1.0\"?>\n<feedback";
  out += root_attrs;
  out += ">";
  out += extra;
  out += R"(<report_metadata><org_name> acme.example </org_name><email>r@acme.example</email>
<report_id>42</report_id><date_range><begin>100</begin><end>200</end></date_range></report_metadata>
<policy_published><domain>example.com</domain><adkim>r</adkim><aspf>s</aspf><p>reject</p><pct>100</pct>
</policy_published>)";
  out += record_body;
  out += "</feedback>";
  return out;
}

constexpr std::string_view kRecord = R"(<record><row><source_ip>192.0.2.1</source_ip><count>7</count>
<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
<identifiers><header_from>example.com</header_from><envelope_from>bounce.example.com</envelope_from></identifiers>
<auth_results><dkim><domain>example.com</domain><selector>s1</selector><result>pass</result></dkim>
<spf><domain>bounce.example.com</domain><scope>mfrom</scope><result>softfail</result></spf></auth_results>
</record>)";

TEST(DmarcReport, ReadsAnRfc7489Report) {
  const auto r = parse_aggregate_report(report("", std::string(kRecord) + std::string(kRecord)));
  ASSERT_TRUE(r.ok()) << r.error;
  const auto& rep = *r.report;
  EXPECT_EQ(rep.schema, ReportSchema::Rfc7489);
  EXPECT_EQ(rep.metadata.org_name, "acme.example");
  EXPECT_EQ(rep.metadata.report_id, "42");
  EXPECT_EQ(rep.metadata.begin, 100);
  EXPECT_EQ(rep.metadata.end, 200);
  EXPECT_EQ(rep.policy.domain, "example.com");
  EXPECT_EQ(rep.policy.p, "reject");
  EXPECT_EQ(rep.policy.aspf, "s");
  EXPECT_EQ(rep.policy.pct, 100);
  ASSERT_EQ(rep.records.size(), 2U);
  EXPECT_EQ(rep.message_count(), 14U);
  const auto& rec = rep.records[0];
  EXPECT_EQ(rec.source_ip, "192.0.2.1");
  EXPECT_EQ(rec.disposition, "none");
  EXPECT_EQ(rec.dkim, "pass");
  EXPECT_EQ(rec.spf, "fail");
  EXPECT_EQ(rec.header_from, "example.com");
  EXPECT_EQ(rec.envelope_from, "bounce.example.com");
  ASSERT_EQ(rec.dkim_results.size(), 1U);
  EXPECT_EQ(rec.dkim_results[0].selector, "s1");
  ASSERT_EQ(rec.spf_results.size(), 1U);
  EXPECT_EQ(rec.spf_results[0].scope, "mfrom");
  EXPECT_EQ(rec.spf_results[0].result, "softfail");
}

TEST(DmarcReport, ReadsAnRfc9990ReportByItsNamespace) {
  const auto r = parse_aggregate_report(
      report(" xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\"", kRecord, "<version>1.0</version>"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.report->schema, ReportSchema::Rfc9990);
  EXPECT_EQ(r.report->records.size(), 1U);
}

TEST(DmarcReport, SkipsExtensionElementsOfOtherNamespaces) {
  const auto r = parse_aggregate_report(report(" xmlns:x=\"urn:example:ext\"", kRecord,
                                               "<x:extension><x:org_name>no</x:org_name></x:extension>"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.report->metadata.org_name, "acme.example");
}

struct BadCase {
  std::string name;
  std::string xml;
  std::string reason_contains;
};

std::string with(std::string_view from, std::string_view to) {
  std::string rec(kRecord);
  rec.replace(rec.find(from), from.size(), to);
  return report("", rec);
}

TEST(DmarcReport, RefusesWhatDoesNotFollowTheSchema) {
  const std::vector<BadCase> cases = {
      {"upper-case result", with("<dkim>pass</dkim>", "<dkim>Pass</dkim>"), "policy_evaluated/dkim"},
      {"bad disposition", with("<disposition>none", "<disposition>None"), "disposition"},
      {"bad ip", with("192.0.2.1", "192.0.2.300"), "source_ip"},
      {"bad count", with("<count>7", "<count>seven"), "count"},
      {"no count", with("<count>7</count>", ""), "count"},
      {"no header_from", with("<header_from>example.com</header_from>", ""), "header_from"},
      {"bad auth result", with("<result>softfail", "<result>SoftFail"), "spf/result"},
      {"not feedback", "<?xml version=\"1.0\"?><html><body/></html>", "<feedback>"},
      {"unknown namespace", report(" xmlns=\"urn:example:other\"", kRecord), "namespace"},
      {"not well formed", report("", kRecord).substr(0, 300), "line"},
      {"empty", "", "root"},
      {"nul byte", std::string("<feedback>\0</feedback>", 22), "NUL"},
      {"two roots", report("", kRecord) + "<feedback/>", "line"},
      {"no org_name",
       [] {
         auto x = report("", kRecord);
         return x.replace(x.find("<org_name>"), 35, "");
       }(),
       "org_name"},
  };
  for (const auto& c : cases) {
    const auto r = parse_aggregate_report(c.xml);
    EXPECT_FALSE(r.ok()) << c.name;
    EXPECT_NE(r.error.find(c.reason_contains), std::string::npos) << c.name << ": got \"" << r.error << "\"";
  }
}

TEST(DmarcReport, CapsTheElementDepth) {
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "<x>";
  for (int i = 0; i < 40; ++i) deep += "</x>";
  const auto r = parse_aggregate_report(report("", kRecord, deep));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("deeper"), std::string::npos) << r.error;
  ReportParseLimits roomy;
  roomy.max_depth = 64;
  EXPECT_TRUE(parse_aggregate_report(report("", kRecord, deep), roomy).ok());
}

TEST(DmarcReport, CapsTextAndRecords) {
  ReportParseLimits small;
  small.max_text = 8;
  EXPECT_FALSE(parse_aggregate_report(report("", kRecord), small).ok());
  small = {};
  small.max_records = 1;
  const auto r = parse_aggregate_report(report("", std::string(kRecord) + std::string(kRecord)), small);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("records"), std::string::npos) << r.error;
}

TEST(DmarcReport, RefusesBillionLaughsWithoutExpandingIt) {
  std::string doc = "<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [\n<!ENTITY a0 \"lol\">\n";
  for (int i = 1; i < 10; ++i) {
    doc += "<!ENTITY a" + std::to_string(i) + " \"";
    for (int j = 0; j < 10; ++j) doc += "&a" + std::to_string(i - 1) + ";";
    doc += "\">\n";
  }
  doc += "]>\n" + report("", kRecord).substr(22);
  doc.insert(doc.find("acme.example"), "&a9;");
  const auto r = parse_aggregate_report(doc);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("DOCTYPE"), std::string::npos) << r.error;
}

TEST(DmarcReport, RefusesExternalEntitiesAndReadsNoFile) {
  const auto secret = std::filesystem::temp_directory_path() / ("dmarc-xxe-" + std::to_string(getpid()));
  { std::ofstream(secret) << "TOP-SECRET"; }
  const std::string decl = "<!DOCTYPE feedback [<!ENTITY xxe SYSTEM \"file://" + secret.string() + "\">]>";
  std::string doc = "<?xml version=\"1.0\"?>" + decl + report("", kRecord).substr(22);
  doc.insert(doc.find("acme.example"), "&xxe;");
  for (const auto& d : {doc, "<!-- c -->" + doc.substr(21), "\xEF\xBB\xBF" + doc}) {
    const auto r = parse_aggregate_report(d);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error.find("TOP-SECRET"), std::string::npos);
  }
  // An entity reference without any declaration is an error of the reader itself.
  const auto undeclared = parse_aggregate_report(with("example.com</header_from>", "&xxe;</header_from>"));
  EXPECT_FALSE(undeclared.ok());
  std::filesystem::remove(secret);
}

TEST(DmarcReport, ReadsPredefinedEntitiesCharacterReferencesAndCdata) {
  auto doc = report("", kRecord);
  doc.replace(doc.find(" acme.example "), 14, "A &amp; B &#x263A; <![CDATA[<c>]]>");
  const auto r = parse_aggregate_report(doc);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.report->metadata.org_name, "A & B \u263A <c>");
}

TEST(DmarcReport, RecognisesReportsCheaply) {
  EXPECT_TRUE(looks_like_aggregate_report(report("", kRecord)));
  EXPECT_TRUE(looks_like_aggregate_report("\xEF\xBB\xBF<feedback xmlns=\"x\">"));
  EXPECT_TRUE(looks_like_aggregate_report("<?xml version=\"1.0\"?><!DOCTYPE feedback []><feedback>"));
  EXPECT_FALSE(looks_like_aggregate_report("<?xml version=\"1.0\"?><feedbackx>"));
  EXPECT_FALSE(looks_like_aggregate_report("Hello, world"));
  EXPECT_FALSE(looks_like_aggregate_report(""));
}

}  // namespace
}  // namespace chainmail
