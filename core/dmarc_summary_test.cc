// dmarc_summary_test.cc - aggregation, filters, dates, table and CSV rendering of `chainmail dmarc`.
#include "core/dmarc_summary.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chainmail {
namespace {

DmarcRecord record(std::string ip, std::uint64_t count, std::string disposition, std::string dkim,
                   std::string spf, std::string from = "example.com") {
  DmarcRecord r;
  r.source_ip = std::move(ip);
  r.count = count;
  r.disposition = std::move(disposition);
  r.dkim = std::move(dkim);
  r.spf = std::move(spf);
  r.header_from = std::move(from);
  return r;
}

AggregateReport report(std::string org, std::string id, std::int64_t begin, std::string domain,
                       std::vector<DmarcRecord> records) {
  AggregateReport r;
  r.metadata.org_name = std::move(org);
  r.metadata.email = "noreply@" + r.metadata.org_name;
  r.metadata.report_id = std::move(id);
  r.metadata.begin = begin;
  r.metadata.end = begin + 86399;
  r.policy.domain = std::move(domain);
  r.policy.p = "reject";
  r.records = std::move(records);
  return r;
}

constexpr std::int64_t kDay1 = 1700006400;  // 2023-11-15 00:00:00 UTC
constexpr std::int64_t kDay2 = kDay1 + 86400;

TEST(DmarcSummary, CountsPerReport) {
  DmarcSummary s;
  EXPECT_EQ(s.add(report("google.com", "1", kDay1, "example.com",
                         {record("192.0.2.1", 10, "none", "pass", "fail"),
                          record("192.0.2.2", 3, "reject", "fail", "fail"),
                          record("192.0.2.3", 2, "none", "fail", "pass")})),
            DmarcSummary::Added::Counted);
  const auto rows = s.reports();
  ASSERT_EQ(rows.size(), 1U);
  const auto& r = rows[0];
  EXPECT_EQ(r.org_name, "google.com");
  EXPECT_EQ(r.policy, "reject");
  EXPECT_EQ(r.messages, 15U);
  EXPECT_EQ(r.dmarc_pass, 12U);
  EXPECT_EQ(r.dmarc_fail, 3U);
  EXPECT_EQ(r.dkim_pass, 10U);
  EXPECT_EQ(r.dkim_fail, 5U);
  EXPECT_EQ(r.spf_pass, 2U);
  EXPECT_EQ(r.spf_fail, 13U);
  EXPECT_EQ(s.messages(), 15U);
}

TEST(DmarcSummary, AggregatesSourcesAcrossReports) {
  DmarcSummary s;
  s.add(
      report("a.example", "1", kDay1, "example.com",
             {record("192.0.2.1", 4, "none", "pass", "pass"), record("192.0.2.1", 1, "none", "pass", "pass"),
              record("192.0.2.1", 2, "quarantine", "fail", "fail")}));
  s.add(report("b.example", "9", kDay2, "example.com", {record("192.0.2.1", 5, "none", "pass", "pass")}));
  const auto src = s.sources();
  ASSERT_EQ(src.size(), 2U);
  EXPECT_EQ(src[0].key->source_ip, "192.0.2.1");
  EXPECT_EQ(src[0].key->disposition, "none");
  EXPECT_EQ(src[0].messages, 10U);
  EXPECT_EQ(src[0].reports, 2U);  // two records in report 1 count as one report
  EXPECT_EQ(src[1].key->disposition, "quarantine");
  EXPECT_EQ(src[1].messages, 2U);
  EXPECT_EQ(s.reports().size(), 2U);
  EXPECT_EQ(s.reports()[0].org_name, "a.example");  // sorted by begin
}

// Sources with as many messages are listed by key, whatever order they were added in; a key repeated in
// every report counts once per report.
TEST(DmarcSummary, SourcesTiesAreOrderedByKey) {
  DmarcSummary s;
  s.add(
      report("a.example", "1", kDay1, "example.com",
             {record("192.0.2.9", 2, "none", "pass", "pass"), record("192.0.2.1", 2, "none", "pass", "pass"),
              record("192.0.2.5", 2, "none", "fail", "pass"), record("192.0.2.5", 2, "none", "pass", "pass"),
              record("192.0.2.7", 1, "none", "pass", "pass", "a.example"),
              record("192.0.2.7", 1, "none", "pass", "pass", "b.example")}));
  s.add(report(
      "b.example", "2", kDay1, "example.com",
      {record("192.0.2.3", 6, "none", "pass", "pass"), record("192.0.2.3", 1, "none", "pass", "pass")}));
  s.add(report("c.example", "3", kDay1, "example.com", {record("192.0.2.3", 1, "none", "pass", "pass")}));
  std::vector<std::string> order;
  for (const auto& src : s.sources())
    order.push_back(src.key->source_ip + " " + src.key->header_from + " " + src.key->dkim);
  EXPECT_EQ(order, (std::vector<std::string>{"192.0.2.3 example.com pass", "192.0.2.1 example.com pass",
                                             "192.0.2.5 example.com fail", "192.0.2.5 example.com pass",
                                             "192.0.2.9 example.com pass", "192.0.2.7 a.example pass",
                                             "192.0.2.7 b.example pass"}));
  EXPECT_EQ(s.sources()[0].messages, 8U);
  EXPECT_EQ(s.sources()[0].reports, 2U);
}

TEST(DmarcSummary, SameReportTwiceCountsOnce) {
  DmarcSummary s;
  const auto r =
      report("a.example", "1", kDay1, "example.com", {record("192.0.2.1", 4, "none", "pass", "pass")});
  EXPECT_EQ(s.add(r), DmarcSummary::Added::Counted);
  EXPECT_EQ(s.add(r), DmarcSummary::Added::Duplicate);
  EXPECT_EQ(s.duplicates(), 1U);
  EXPECT_EQ(s.messages(), 4U);
  EXPECT_EQ(s.sources().at(0).messages, 4U);
}

TEST(DmarcSummary, LimitsBoundWhatIsKeptNotWhatIsCounted) {
  DmarcSummary s({}, DmarcSummaryLimits{2, 2});
  for (int i = 0; i < 4; ++i)
    s.add(report("org", std::to_string(i), kDay1, "example.com",
                 {record("192.0.2." + std::to_string(i), 10, "none", "pass", "pass"),
                  record("192.0.2.0", 1, "none", "pass", "pass")}));
  EXPECT_EQ(s.reports().size(), 2U);
  EXPECT_EQ(s.unlisted_reports(), 2U);
  EXPECT_EQ(s.messages(), 44U);
  const auto src = s.sources();
  ASSERT_EQ(src.size(), 3U);  // 192.0.2.0, 192.0.2.1 and "(other)"
  std::uint64_t total = 0;
  for (const auto& row : src) total += row.messages;
  EXPECT_EQ(total, 44U);
  EXPECT_EQ(src[0].key->source_ip, kOtherSources);  // 192.0.2.2 and .3: 20 messages
  EXPECT_EQ(src[0].messages, 20U);
  EXPECT_EQ(src[0].reports, 2U);  // two reports folded into it, each counted once
  EXPECT_EQ(s.folded_sources(), 2U);
}

// A report counted through a SourceTally (as `chainmail dmarc` parses it: each half of its records into a
// tally of its own, the two appended) is summarised exactly as from its records, up to the limits.
TEST(SourceTally, SummarisesAsTheRecordsDo) {
  std::vector<AggregateReport> reports;
  for (int i = 0; i < 6; ++i) {
    std::vector<DmarcRecord> records;
    for (int j = 0; j < 7; ++j) {
      const int host = (i * 3 + j) % 4;  // keys shared within and across reports, and across the halves
      records.push_back(record("192.0.2." + std::to_string(host), static_cast<std::uint64_t>(j) + 1,
                               host == 0 ? "reject" : "none", host % 2 == 0 ? "pass" : "fail",
                               host < 2 ? "pass" : "fail", j == 3 ? "b.example" : "a.example"));
    }
    reports.push_back(report("org" + std::to_string(i % 4), std::to_string(i % 5),
                             kDay1 + std::int64_t{i} * 86400, "example.com", std::move(records)));
  }
  reports.push_back(reports[1]);  // a duplicate
  for (const DmarcSummaryLimits limits : {DmarcSummaryLimits{}, DmarcSummaryLimits{3, 4}}) {
    DmarcSummary from_records({}, limits);
    DmarcSummary from_tallies({}, limits);
    for (const auto& r : reports) {
      SourceTally head;
      auto tail = head.fresh();
      const std::size_t cut = r.records.size() / 2;
      for (std::size_t k = 0; k < r.records.size(); ++k) {
        if (k < cut) {
          head.add(DmarcRecord(r.records[k]));
        } else {
          tail->add(DmarcRecord(r.records[k]));
        }
      }
      head.append(std::move(*tail));
      auto without = r;
      without.records.clear();
      EXPECT_EQ(from_tallies.add(without, std::move(head)), from_records.add(r));
    }
    const auto csv = [](const DmarcSummary& s) {
      return render_dmarc_csv(s.reports(), s.sources(), DmarcView::All, false);
    };
    EXPECT_EQ(csv(from_tallies), csv(from_records));
    EXPECT_EQ(from_tallies.messages(), from_records.messages());
    EXPECT_EQ(from_tallies.duplicates(), 1U);
    EXPECT_EQ(from_tallies.folded_sources(), from_records.folded_sources());
    EXPECT_EQ(from_tallies.unlisted_reports(), from_records.unlisted_reports());
    if (limits.max_sources == 4) {
      EXPECT_GT(from_records.folded_sources(), 0U);
    }
  }
}

struct FilterCase {
  const char* name;
  DmarcFilter filter;
  bool want;
};

TEST(DmarcFilter, Table) {
  const auto r = report("Google Inc.", "1", kDay1, "Example.COM", {});
  const std::vector<FilterCase> cases = {
      {"none", {}, true},
      {"since same day", {kDay1, {}, {}, {}}, true},
      {"since after end", {kDay2, {}, {}, {}}, false},
      {"until before begin", {{}, kDay1 - 1, {}, {}}, false},
      {"until at begin", {{}, kDay1, {}, {}}, true},
      {"domain case-insensitive", {{}, {}, {"example.com"}, {}}, true},
      {"domain other", {{}, {}, {"example.org"}, {}}, false},
      {"domain one of several", {{}, {}, {"example.org", "example.com"}, {}}, true},
      {"domain is not a suffix match", {{}, {}, {"ample.com"}, {}}, false},
      {"reporter substring of org", {{}, {}, {}, {"google"}}, true},
      {"reporter in contact", {{}, {}, {}, {"noreply@"}}, true},
      {"reporter other", {{}, {}, {}, {"yahoo"}}, false},
      {"all must hold", {kDay1, kDay1, {"example.com"}, {"yahoo"}}, false},
  };
  for (const auto& c : cases) EXPECT_EQ(c.filter.matches(r), c.want) << c.name;
}

TEST(DmarcSummary, FilteredReportsAreCountedNotKept) {
  DmarcSummary s(DmarcFilter{{}, {}, {"example.org"}, {}});
  EXPECT_EQ(s.add(report("a", "1", kDay1, "example.com", {record("192.0.2.1", 1, "none", "pass", "pass")})),
            DmarcSummary::Added::Filtered);
  EXPECT_EQ(s.filtered(), 1U);
  EXPECT_TRUE(s.reports().empty());
  EXPECT_TRUE(s.sources().empty());
}

TEST(DmarcDates, ParseDay) {
  EXPECT_EQ(parse_day("2023-11-15"), kDay1);
  EXPECT_EQ(parse_day("1970-01-01"), 0);
  EXPECT_EQ(parse_day("2024-02-29"), 1709164800);
  for (const char* bad :
       {"", "2023-11-5", "2023/11/15", "2023-13-01", "2023-02-30", "2023-11-15x", "abcd-ef-gh", "+023-11-15"})
    EXPECT_FALSE(parse_day(bad).has_value()) << bad;
}

TEST(DmarcDates, FormatTime) {
  EXPECT_EQ(format_time(kDay1), "2023-11-15 00:00:00");
  EXPECT_EQ(format_time(kDay1 + 86399), "2023-11-15 23:59:59");
  EXPECT_EQ(format_time(0), "1970-01-01 00:00:00");
}

TEST(DmarcCsv, FieldQuoting) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"plain", "plain"},
      {"", ""},
      {"a,b", "\"a,b\""},
      {"say \"hi\"", "\"say \"\"hi\"\"\""},
      {"two\nlines", "\"two\nlines\""},
      {"cr\r", "\"cr\r\""},
      {" lead", "\" lead\""},
      {"trail ", "\"trail \""},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(csv_field(in), want) << in;
}

TEST(DmarcCsv, Tables) {
  DmarcSummary s;
  s.add(report("Org, Inc.", "id\"1", kDay1, "example.com", {record("192.0.2.1", 7, "none", "pass", "fail")}));
  const auto csv = render_dmarc_csv(s.reports(), s.sources(), DmarcView::All, false);
  EXPECT_EQ(
      csv,
      "org,report_id,begin,end,domain,policy,messages,dmarc_pass,dmarc_fail,dkim_pass,dkim_fail,spf_pass,"
      "spf_fail\r\n"
      "\"Org, Inc.\",\"id\"\"1\",2023-11-15 00:00:00,2023-11-15 23:59:59,example.com,reject,7,7,0,7,0,0,7\r\n"
      "\r\n"
      "source_ip,header_from,disposition,dkim,spf,messages,reports\r\n"
      "192.0.2.1,example.com,none,pass,fail,7,1\r\n");
  auto sources = s.sources();
  sources[0].ptr = "mail.example.com";
  EXPECT_EQ(render_dmarc_csv({}, sources, DmarcView::Sources, true),
            "source_ip,ptr,header_from,disposition,dkim,spf,messages,reports\r\n"
            "192.0.2.1,mail.example.com,example.com,none,pass,fail,7,1\r\n");
}

TEST(DmarcTable, AlignedAndPrintable) {
  DmarcSummary s;
  s.add(report(
      "evil\x1b[2J\norg", "1", kDay1, "example.com",
      {record("192.0.2.1", 1234, "none", "pass", "pass"), record("2001:db8::1", 5, "none", "fail", "fail")}));
  const auto text = render_dmarc_table(s.reports(), s.sources(), DmarcView::All, false);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_NE(text.find("evil?[2J?org"), std::string::npos);
  EXPECT_NE(text.find("Reports (1)\n"), std::string::npos);
  EXPECT_NE(text.find("Sources (2)\n"), std::string::npos);
  // Counts right-aligned under their header: both source lines end at the same column.
  EXPECT_NE(text.find("192.0.2.1    example.com  none         pass  pass      1234        1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("2001:db8::1  example.com  none         fail  fail         5        1\n"),
            std::string::npos)
      << text;
  const auto only_sources = render_dmarc_table(s.reports(), s.sources(), DmarcView::Sources, false);
  EXPECT_EQ(only_sources.find("Reports"), std::string::npos);
}

// The PTR column, looked up names being attacker text too (a PTR record can hold any bytes): widths count it,
// its control characters are replaced like every other cell's, and the header keeps its place.
TEST(DmarcTable, PtrColumnIsAlignedAndPrintable) {
  const SourceKey first{"192.0.2.1", "example.com", "none", "pass", "pass"};
  const SourceKey second{"192.0.2.22", "example.com", "none", "pass", "pass"};
  std::vector<SourceRow> sources{{&first, 7, 1, "a\tb.example"}, {&second, 3, 1, "-"}};
  const auto text = render_dmarc_table({}, sources, DmarcView::Sources, true);
  EXPECT_EQ(text,
            "Sources (2)\n"
            "source_ip   ptr          header_from  disposition  dkim  spf   messages  reports\n"
            "192.0.2.1   a?b.example  example.com  none         pass  pass         7        1\n"
            "192.0.2.22  -            example.com  none         pass  pass         3        1\n");
}

}  // namespace
}  // namespace chainmail
