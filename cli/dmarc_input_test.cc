// dmarc_input_test.cc - what `chainmail dmarc` reads: each kind of file from the shared corpus
// (CHAINMAIL_DMARC_SAMPLES), decided by content; directory walking; the Maildir folder layout; reverse DNS.
#include "cli/dmarc_input.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <optional>
#include <string>

namespace chainmail {
namespace {

namespace fs = std::filesystem;

fs::path samples() {
  return CHAINMAIL_DMARC_SAMPLES;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct SampleCase {
  const char* file;  // under aggregate/
  const char* org;   // metadata/org_name of the report in it
  std::uint64_t messages;
};

// The counts are the sums of <count> in each file (checked by hand against the XML).
TEST(DmarcInput, DecodesEachEncodingByContent) {
  const std::vector<SampleCase> cases = {
      {"example.net!example.com!1529366400!1529452799.xml", "example.net", 1},
      {"fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz", "FastMail Pty Ltd", 1},
      {"estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip", "XYZ Corporation", 1},
      {"google-borschow.com-949348866075514174.eml", "google.com", 1},
      {"rfc9990-sample.xml", "Sample Reporter", 123},
      {"rfc9990-example.net!example.com!1700000000!1700086399.xml", "example.net", 7},
  };
  for (const auto& c : cases) {
    const auto data = slurp(samples() / "aggregate" / c.file);
    ASSERT_FALSE(data.empty()) << c.file;
    const auto decoded = decode_report_file(data, {});
    ASSERT_EQ(decoded.reports.size(), 1U)
        << c.file << ": " << (decoded.errors.empty() ? "" : decoded.errors[0]);
    EXPECT_EQ(decoded.reports[0].metadata.org_name, c.org) << c.file;
    EXPECT_EQ(decoded.reports[0].message_count(), c.messages) << c.file;
  }
}

// A large report (here 0.9 MB, over the 256 KiB at which it is read as two halves on two threads) gives
// what the one-thread parser gives.
TEST(DmarcInput, LargeReportReadOnTwoThreadsAsOnOne) {
  const auto data = slurp(samples() / "aggregate" / "!large-example.com!1711897200!1711983600.xml");
  ASSERT_GT(data.size(), std::size_t{256} * 1024);
  ReportSplit split = ReportSplit::none;
  const auto serial = parse_aggregate_report(data);
  const RunBoth in_turn = [](const std::function<void()>& first, const std::function<void()>& second) {
    first();
    second();
  };
  const auto halves = parse_aggregate_report(data, {}, in_turn, std::size_t{256} * 1024, &split);
  EXPECT_EQ(split, ReportSplit::merged);
  EXPECT_EQ(halves, serial);
  const auto decoded = decode_report_file(data, {});
  ASSERT_EQ(decoded.reports.size(), 1U) << (decoded.errors.empty() ? "" : decoded.errors[0]);
  ASSERT_TRUE(serial.ok()) << serial.error;
  EXPECT_EQ(decoded.reports[0], *serial.report);
  EXPECT_GT(decoded.reports[0].records.size(), 1000U);
}

// With tally_sources, every kind of file (plain, gzip, zip, mail; the large one read as two halves straight
// from its file) yields its reports without records, and a tally of exactly those records: the same summary.
TEST(DmarcInput, TalliesEveryKindOfFileAsItsRecords) {
  ReportReadLimits tally;
  tally.tally_sources = true;
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(samples() / "aggregate")) {
    std::vector<std::pair<AggregateReport, std::optional<SourceTally>>> counted;
    std::vector<AggregateReport> kept;
    for_each_report(
        {e.path()}, tally,
        [&](const fs::path&, const AggregateReport& r, SourceTally* t) {
          counted.emplace_back(r, t != nullptr ? std::optional(std::move(*t)) : std::nullopt);
        },
        [](const fs::path&, const std::string&) {});
    for_each_report(
        {e.path()}, {}, [&](const fs::path&, const AggregateReport& r, SourceTally*) { kept.push_back(r); },
        [](const fs::path&, const std::string&) {});
    ASSERT_EQ(counted.size(), kept.size()) << e.path();
    DmarcSummary from_tallies;
    DmarcSummary from_records;
    for (std::size_t i = 0; i < kept.size(); ++i) {
      auto& [report, t] = counted[i];
      ASSERT_TRUE(t.has_value()) << e.path();
      EXPECT_TRUE(report.records.empty()) << e.path();
      EXPECT_EQ(t->messages(), kept[i].message_count()) << e.path();
      report.records = kept[i].records;
      EXPECT_EQ(report, kept[i]) << e.path();  // everything else as parsed without a tally
      report.records.clear();
      from_tallies.add(report, std::move(*t));
      from_records.add(kept[i]);
    }
    EXPECT_EQ(render_dmarc_csv(from_tallies.reports(), from_tallies.sources(), DmarcView::All, false),
              render_dmarc_csv(from_records.reports(), from_records.sources(), DmarcView::All, false))
        << e.path();
    files += kept.empty() ? 0 : 1;
  }
  EXPECT_GE(files, 10U);
}

TEST(DmarcInput, BadFilesSayWhy) {
  for (const char* f :
       {"aggregate/invalid_xml.xml", "aggregate/invalid_utf_8.xml",
        "aggregate_invalid/report_with_upper_cased_pass.xml", "failure/dmarc_ruf_report_linkedin.eml"}) {
    const auto decoded = decode_report_file(slurp(samples() / f), {});
    EXPECT_TRUE(decoded.reports.empty()) << f;
    ASSERT_FALSE(decoded.errors.empty()) << f;
    EXPECT_FALSE(decoded.errors[0].empty()) << f;
  }
  EXPECT_FALSE(decode_report_file("", {}).errors.empty());
}

// A large file is read as two halves at once (the second by the helper thread, or here when it is late):
// every byte lands where it belongs, for a report and for a large file that is not one, file after file
// with the same helper.
TEST(DmarcInput, LargeFilesReadInTwoHalvesAsInOne) {
  const fs::path large = samples() / "aggregate" / "!large-example.com!1711897200!1711983600.xml";
  const auto serial = parse_aggregate_report(slurp(large));
  ASSERT_TRUE(serial.ok()) << serial.error;
  char dir_template[] = "/tmp/chainmail-dmarc-input-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const fs::path dir = dir_template;
  // 300 KiB of text whose every byte says where it is: a half read to the wrong place would not parse.
  std::string text = "<feedback>";
  while (text.size() < std::size_t{300} * 1024) text += "<!-- " + std::to_string(text.size()) + " -->";
  std::ofstream(dir / "b-not-closed.xml") << text;
  fs::copy_file(large, dir / "a.xml");
  fs::copy_file(large, dir / "c.xml");
  // With the helper thread (dmarc_reports.parse_threads = 2), and without it (1: read through, one parser).
  for (const bool two_threads : {true, false}) {
    HelperThread helper(two_threads);
    std::vector<AggregateReport> reports;
    std::vector<std::string> bad;
    const auto stats = for_each_report(
        {dir}, {}, [&](const fs::path&, const AggregateReport& r, SourceTally*) { reports.push_back(r); },
        [&](const fs::path& f, const std::string& why) { bad.push_back(f.filename().string() + ": " + why); },
        helper);
    EXPECT_EQ(stats.files, 3U);
    ASSERT_EQ(reports.size(), 2U);
    EXPECT_EQ(reports[0], *serial.report);
    EXPECT_EQ(reports[1], *serial.report);
    ASSERT_EQ(bad.size(), 1U);
    EXPECT_EQ(bad[0].rfind("b-not-closed.xml: line ", 0), 0U) << bad[0];  // libxml2 saw the end, unclosed
  }
  fs::remove_all(dir);
}

// A large plain report is parsed straight from the file (as two halves, or through by one parser), never
// read whole; when that fails (a NUL byte, a broken record, a limit), the file is read whole and the serial
// parse gives the verdict, the same as for its bytes in memory.
TEST(DmarcInput, LargeFilesThatFailInAHalfGetTheSerialVerdict) {
  const auto xml = slurp(samples() / "aggregate" / "!large-example.com!1711897200!1711983600.xml");
  const auto tail_record = xml.find("<source_ip>", xml.size() * 3 / 4) + 11;
  auto nul = xml;
  nul[tail_record] = '\0';
  auto bad_ip = xml;
  bad_ip.insert(tail_record, "x");
  char dir_template[] = "/tmp/chainmail-dmarc-input-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const fs::path dir = dir_template;
  std::ofstream(dir / "nul.xml") << nul;
  std::ofstream(dir / "bad-ip.xml") << bad_ip;
  ReportReadLimits few_records;
  few_records.parse.max_records = 1000;
  for (const auto& [file, limits] :
       {std::pair{"nul.xml", ReportReadLimits{}}, std::pair{"bad-ip.xml", ReportReadLimits{}},
        std::pair{"bad-ip.xml", few_records}}) {
    const auto in_memory = decode_report_file(slurp(dir / file), limits);
    ASSERT_EQ(in_memory.errors.size(), 1U) << file;
    for (const bool two_threads : {true, false}) {
      HelperThread helper(two_threads);
      std::vector<std::string> bad;
      const auto stats = for_each_report(
          {dir / file}, limits, [](const fs::path&, const AggregateReport&, SourceTally*) {},
          [&](const fs::path&, const std::string& why) { bad.push_back(why); }, helper);
      EXPECT_EQ(stats.files, 1U) << file;
      EXPECT_EQ(stats.reports, 0U) << file;
      EXPECT_EQ(bad, in_memory.errors) << file << (two_threads ? ", two threads" : ", one");
    }
  }
  EXPECT_EQ(decode_report_file(nul, {}).errors[0], "NUL byte in document (not UTF-8 XML)");
  EXPECT_EQ(decode_report_file(bad_ip, {}).errors[0].rfind("record ", 0), 0U);
  fs::remove_all(dir);
}

TEST(DmarcInput, FileSizeCap) {
  ReportReadLimits limits;
  limits.max_file_bytes = 100;
  std::vector<std::string> bad;
  const auto stats = for_each_report(
      {samples() / "aggregate" / "rfc9990-sample.xml"}, limits,
      [](const fs::path&, const AggregateReport&, SourceTally*) {},
      [&](const fs::path&, const std::string& why) { bad.push_back(why); });
  EXPECT_EQ(stats.reports, 0U);
  ASSERT_EQ(bad.size(), 1U);
  EXPECT_NE(bad[0].find("larger than"), std::string::npos);
}

// Plain XML is parsed in place, without extract_report(), so its size cap is checked here too; gzip and zip
// still go through it.
TEST(DmarcInput, PlainReportsKeepTheArchiveSizeCap) {
  const auto xml = slurp(samples() / "aggregate" / "rfc9990-sample.xml");
  ReportReadLimits limits;
  limits.archive.max_bytes = xml.size();
  EXPECT_EQ(decode_report_file(xml, limits).reports.size(), 1U);
  limits.archive.max_bytes = xml.size() - 1;
  const auto decoded = decode_report_file(xml, limits);
  EXPECT_TRUE(decoded.reports.empty());
  ASSERT_EQ(decoded.errors.size(), 1U);
  EXPECT_EQ(decoded.errors[0], "report larger than the limit");
  limits.archive.max_bytes = 100;
  const auto gz = decode_report_file(
      slurp(samples() / "aggregate" / "fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz"),
      limits);
  EXPECT_TRUE(gz.reports.empty());
}

// A FIFO named on the command line is refused at once, not waited on (no writer ever comes).
TEST(DmarcInput, RefusesAFifoWithoutBlocking) {
  const fs::path fifo = fs::temp_directory_path() / ("dmarc_input_fifo." + std::to_string(getpid()));
  fs::remove(fifo);
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::vector<std::string> bad;
  const auto stats = for_each_report(
      {fifo}, {}, [](const fs::path&, const AggregateReport&, SourceTally*) {},
      [&](const fs::path&, const std::string& why) { bad.push_back(why); });
  fs::remove(fifo);
  EXPECT_EQ(stats.reports, 0U);
  ASSERT_EQ(bad.size(), 1U);
  EXPECT_EQ(bad[0], "not a regular file");
}

TEST(DmarcInput, WalksDirectoriesInOrder) {
  const fs::path dir = fs::temp_directory_path() / ("dmarc_input_test." + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sub");
  fs::copy_file(samples() / "aggregate" / "rfc9990-sample.xml", dir / "b");
  fs::copy_file(samples() / "aggregate" / "invalid_xml.xml", dir / "a");
  fs::copy_file(samples() / "aggregate" / "example.net!example.com!1529366400!1529452799.xml",
                dir / "sub" / "c");
  std::vector<std::string> seen;
  std::vector<std::string> bad;
  const auto stats = for_each_report(
      {dir, dir / "missing"}, {},
      [&](const fs::path& f, const AggregateReport&, SourceTally*) { seen.push_back(f.filename().string()); },
      [&](const fs::path& f, const std::string&) { bad.push_back(f.filename().string()); });
  EXPECT_EQ(seen, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(bad, (std::vector<std::string>{"a", "missing"}));
  EXPECT_EQ(stats.files, 3U);
  EXPECT_EQ(stats.reports, 2U);
  EXPECT_EQ(stats.bad, 2U);
  fs::remove_all(dir);
}

TEST(DmarcInput, ReverseDnsCachesAndNamesTrouble) {
  std::map<std::string, std::string> cache{{"192.0.2.99", "cached.example"}};
  reverse_dns({"127.0.0.1", "not-an-ip", "192.0.2.99"}, std::chrono::milliseconds(3000), 4, cache);
  EXPECT_EQ(cache["192.0.2.99"], "cached.example");
  EXPECT_EQ(cache["not-an-ip"].rfind("? ", 0), 0U) << cache["not-an-ip"];
  EXPECT_FALSE(cache["127.0.0.1"].empty());  // "localhost" from /etc/hosts, or "-"/"?": never left blank
}

}  // namespace
}  // namespace chainmail
