// dmarc_report_test.cc - the aggregate report parser: both schemas, the schema rules, and hostile documents.
// The split parse, reading piece by piece, records without details and tallies: dmarc_report_split_test.cc.
#include "core/dmarc_report.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <thread>
#include <vector>

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

// Every field the parser knows, each under its own parent; a known name under another parent, and unknown
// names as long as known ones and starting alike, are skipped.
TEST(DmarcReport, ReadsEveryFieldUnderItsParentOnly) {
  const std::string doc = R"(<?xml version="1.0"?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0"><version>1.0</version>
<report_metadata><org_name>o</org_name><email>e@o</email><extra_contact_info>x</extra_contact_info>
<report_id>id</report_id><error>e1</error><error>e2</error><domain>not.here</domain>
<date_range><begin>1</begin><end>2</end><dns>skipped</dns></date_range></report_metadata>
<policy_published><domain>d.example</domain><adkim>s</adkim><aspf>r</aspf><p>none</p><sp>reject</sp>
<np>quarantine</np><fo>1</fo><testing>n</testing><discovery_method>treewalk</discovery_method>
<pz>skipped</pz><begin>skipped</begin></policy_published>
<record><row><source_ip>2001:db8::1</source_ip><count>3</count><countx>9</countx><policy_evaluated>
<disposition>pass</disposition><dkim>pass</dkim><spf>fail</spf><result>skipped</result>
<reason><type>local_policy</type><comment>c</comment></reason><reason><type>forwarded</type></reason>
</policy_evaluated></row><identifiers><header_from>h.example</header_from><envelope_from>f.example</envelope_from>
<envelope_to>t.example</envelope_to></identifiers><auth_results><dkim><domain>k.example</domain>
<selector>sel</selector><result>pass</result><scope>skipped</scope></dkim><spf><domain>s.example</domain>
<scope>helo</scope><result>none</result><selector>skipped</selector></spf></auth_results>
<source_ip>192.0.2.9</source_ip></record></feedback>)";
  const auto r = parse_aggregate_report(doc);
  ASSERT_TRUE(r.ok()) << r.error;
  const auto& rep = *r.report;
  EXPECT_EQ(rep.version, "1.0");
  EXPECT_EQ(rep.metadata.org_name, "o");
  EXPECT_EQ(rep.metadata.email, "e@o");
  EXPECT_EQ(rep.metadata.extra_contact_info, "x");
  EXPECT_EQ(rep.metadata.report_id, "id");
  EXPECT_EQ(rep.metadata.errors, (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(rep.metadata.begin, 1);
  EXPECT_EQ(rep.metadata.end, 2);
  EXPECT_EQ(rep.policy.domain, "d.example");
  EXPECT_EQ(rep.policy.adkim, "s");
  EXPECT_EQ(rep.policy.aspf, "r");
  EXPECT_EQ(rep.policy.p, "none");
  EXPECT_EQ(rep.policy.sp, "reject");
  EXPECT_EQ(rep.policy.np, "quarantine");
  EXPECT_EQ(rep.policy.fo, "1");
  EXPECT_EQ(rep.policy.testing, "n");
  EXPECT_EQ(rep.policy.discovery_method, "treewalk");
  EXPECT_FALSE(rep.policy.pct.has_value());
  ASSERT_EQ(rep.records.size(), 1U);
  const auto& rec = rep.records[0];
  EXPECT_EQ(rec.source_ip, "2001:db8::1");
  EXPECT_EQ(rec.count, 3U);
  EXPECT_EQ(rec.disposition, "pass");
  EXPECT_EQ(rec.dkim, "pass");
  EXPECT_EQ(rec.spf, "fail");
  EXPECT_EQ(rec.reasons, (std::vector<std::string>{"local_policy", "forwarded"}));
  EXPECT_EQ(rec.header_from, "h.example");
  EXPECT_EQ(rec.envelope_from, "f.example");
  EXPECT_EQ(rec.envelope_to, "t.example");
  ASSERT_EQ(rec.dkim_results.size(), 1U);
  EXPECT_EQ(rec.dkim_results[0].domain, "k.example");
  EXPECT_EQ(rec.dkim_results[0].selector, "sel");
  EXPECT_EQ(rec.dkim_results[0].result, "pass");
  EXPECT_EQ(rec.dkim_results[0].scope, "");
  ASSERT_EQ(rec.spf_results.size(), 1U);
  EXPECT_EQ(rec.spf_results[0].domain, "s.example");
  EXPECT_EQ(rec.spf_results[0].scope, "helo");
  EXPECT_EQ(rec.spf_results[0].result, "none");
  EXPECT_EQ(rec.spf_results[0].selector, "");
}

// libxml2 reads the document through a callback, a few KB at a time: names, text, entity references and
// CDATA sections cut by a piece boundary must come out whole, and the last record must be read.
TEST(DmarcReport, ReadsADocumentLargerThanLibxml2sReadPieces) {
  std::string records;
  std::uint64_t sum = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string rec(kRecord);
    const auto count = std::to_string(i + 1);
    rec.replace(rec.find("<count>7"), 8, "<count>" + count);
    rec.replace(rec.find("192.0.2.1"), 9, "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256));
    rec.replace(rec.find("bounce.example.com</envelope_from>"), 18,
                "b&amp;<![CDATA[" + std::string(static_cast<std::size_t>(i % 97), 'x') + "]]>");
    records += rec;
    sum += static_cast<std::uint64_t>(i) + 1;
  }
  const auto doc = report("", records);
  ASSERT_GT(doc.size(), std::size_t{1} << 20);
  const auto r = parse_aggregate_report(doc);
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.report->records.size(), 3000U);
  EXPECT_EQ(r.report->message_count(), sum);
  for (const std::size_t i : {std::size_t{0}, std::size_t{1234}, std::size_t{2999}}) {
    const auto& rec = r.report->records[i];
    EXPECT_EQ(rec.source_ip, "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256));
    EXPECT_EQ(rec.envelope_from, "b&" + std::string(i % 97, 'x'));
    EXPECT_EQ(rec.spf_results.at(0).result, "softfail");
  }
  // Cut anywhere, the document is not well-formed: the parser must see where its input ends.
  const auto cut = parse_aggregate_report(std::string_view(doc).substr(0, doc.size() / 2));
  EXPECT_FALSE(cut.ok());
  EXPECT_NE(cut.error.find("line"), std::string::npos) << cut.error;
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
  // The text of containers and unknown elements is not kept, but it is counted all the same.
  small.max_text = 64;
  const auto long_text = with("<row>", "<row>" + std::string(65, ' '));
  const auto spaces = parse_aggregate_report(long_text, small);
  EXPECT_FALSE(spaces.ok());
  EXPECT_NE(spaces.error.find("longer than 64"), std::string::npos) << spaces.error;
  const auto unknown =
      parse_aggregate_report(report("", kRecord, "<x>" + std::string(65, 'a') + "</x>"), small);
  EXPECT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error.find("longer than 64"), std::string::npos) << unknown.error;
  EXPECT_TRUE(parse_aggregate_report(with("<row>", "<row>" + std::string(64, ' ')), small).ok());
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

// Text in a declared encoding that does not convert: libxml2 raises that error without a parser context.
// It is the report's error, as any other, on whichever thread reads it; nothing goes to stderr, where it
// would stand between a command's own lines naming no file.
TEST(DmarcReport, AnEncodingThatFailsIsTheReportsErrorNotStderrNoise) {
  std::string doc = report("", kRecord);
  doc.replace(0, 21, "<?xml version=\"1.0\" encoding=\"BIG5\"?>");
  doc.replace(doc.find(" acme.example "), 14, "\x8D\x8D\x8D\x8D");
  for (const bool on_a_thread : {false, true}) {
    ::testing::internal::CaptureStderr();
    ReportParseResult r;
    if (on_a_thread) {
      std::thread([&] { r = parse_aggregate_report(doc); }).join();
    } else {
      r = parse_aggregate_report(doc);
    }
    const std::string noise = ::testing::internal::GetCapturedStderr();
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("input conversion failed"), std::string::npos) << r.error;
    EXPECT_EQ(noise, "");
  }
  // The next document on the same thread is read as if nothing had happened.
  EXPECT_TRUE(parse_aggregate_report(report("", kRecord)).ok());
}

TEST(DmarcReport, RecognisesReportsCheaply) {
  EXPECT_TRUE(looks_like_aggregate_report(report("", kRecord)));
  EXPECT_TRUE(looks_like_aggregate_report("\xEF\xBB\xBF<feedback xmlns=\"x\">"));
  EXPECT_TRUE(looks_like_aggregate_report("<?xml version=\"1.0\"?><!DOCTYPE feedback []><feedback>"));
  EXPECT_FALSE(looks_like_aggregate_report("<?xml version=\"1.0\"?><feedbackx>"));
  EXPECT_FALSE(looks_like_aggregate_report("Hello, world"));
  EXPECT_FALSE(looks_like_aggregate_report(""));
}

// Room for the most records a document could hold is reserved up front, as address space; where even that is
// short (ulimit -v), the parse goes on without it. In a child process, under an address-space limit well
// below that reservation (~50 MB for 32 MB of XML) but above what the parse itself needs.
TEST(DmarcReport, ParsesWhenTheRecordsCannotBeReservedUpFront) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizers reserve terabytes of address space: no address-space limit can be set";
#else
  std::string xml = "<?xml version=\"1.0\"?>\n<feedback>";
  xml += "<report_metadata><org_name>o</org_name><report_id>r</report_id><date_range><begin>1</begin>";
  xml += "<end>2</end></date_range></report_metadata><policy_published><domain>d.example</domain><p>none</p>";
  xml += "</policy_published><record><row><source_ip>192.0.2.1</source_ip><count>3</count><policy_evaluated>";
  xml += "<disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>";
  xml += "<identifiers><header_from>d.example</header_from></identifiers></record>";
  const std::string comment = "<!--" + std::string(1016, '.') + "-->\n";  // 1 KiB
  while (xml.size() < std::size_t{32} << 20) xml += comment;
  xml += "</feedback>\n";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Current mappings plus 24 MB: libxml2 and the one record fit, 160,000 records' worth of room does not.
    std::size_t mapped = 0;
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);) {
      const auto dash = line.find('-');
      const auto space = line.find(' ');
      mapped += std::stoull(line.substr(dash + 1, space - dash - 1), nullptr, 16) -
                std::stoull(line.substr(0, dash), nullptr, 16);
    }
    const rlimit limit{mapped + (std::size_t{24} << 20), mapped + (std::size_t{24} << 20)};
    if (::setrlimit(RLIMIT_AS, &limit) != 0) ::_exit(3);
    try {
      std::vector<char> too_much(std::size_t{40} << 20);  // the limit really bites
      ::_exit(4);
    } catch (const std::bad_alloc&) {
    }
    const auto r = parse_aggregate_report(xml);
    if (!r.ok()) std::fprintf(stderr, "parse: %s\n", r.error.c_str());
    ::_exit(r.ok() && r.report->message_count() == 3 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the parse failed; 3: setrlimit; 4: the limit did not bite";
#endif
}

}  // namespace
}  // namespace chainmail
