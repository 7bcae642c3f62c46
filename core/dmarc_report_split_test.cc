// dmarc_report_split_test.cc - the parser's other ways of reading a report, each against the plain serial
// parse, on generated documents and the real corpus: the split parse (two halves at once), the document read
// piece by piece through a callback, records without their details, and records counted into a tally.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "core/dmarc_report.h"
#include "core/dmarc_report_test_support.h"

namespace chainmail {
namespace {

using namespace report_test;  // NOLINT(google-build-using-namespace): the shared helpers of these tests

// The split parse, with threads and in turn, gives exactly the serial result, along the expected path; and
// so does the split parse of the document read piece by piece, which merges exactly where the other does
// (or, expected_at, says none where only the other can cut, before the middle), and falls back alike. Each
// of them, given a tally, counts exactly the serial parse's records into it (and nothing when it leaves the
// document to the caller).
void expect_as_serial(const std::string& name, std::string_view xml, ReportSplit expected,
                      const ReportParseLimits& limits = {}, std::optional<ReportSplit> expected_at = {}) {
  const auto serial = parse_aggregate_report(xml, limits);
  {
    KeepingTally tally;
    expect_tally_as_serial(name + ", serial", serial, parse_aggregate_report(xml, limits, &tally), tally);
  }
  for (const Runner run : kRunners) {
    ReportSplit path = ReportSplit::merged;
    const auto split = parse_aggregate_report(xml, limits, run, 1, &path);
    EXPECT_TRUE(split == serial) << name << ": serial " << describe(serial) << ", split " << describe(split);
    EXPECT_EQ(path, expected) << name << " (" << describe(serial) << ")";
    {
      KeepingTally tally;
      ReportSplit tally_path = ReportSplit::merged;
      const auto counted = parse_aggregate_report(xml, limits, run, 1, &tally_path, &tally);
      expect_tally_as_serial(name + ", split", serial, counted, tally);
      EXPECT_EQ(tally_path, expected) << name << ", with a tally";
    }
    {
      KeepingTally tally;
      Reads reads(xml);
      ReportSplit tally_path = ReportSplit::merged;
      const auto counted =
          parse_aggregate_report_at(xml.size(), reads.read_at(), limits, run, 1, &tally_path, &tally);
      EXPECT_EQ(tally_path, expected_at.value_or(expected)) << name << ", read piece by piece with a tally";
      if (counted) {
        expect_tally_as_serial(name + ", read piece by piece", serial, *counted, tally);
      } else {
        EXPECT_TRUE(tally.records.empty()) << name << ": counted, then left to the caller";
      }
    }

    Reads reads(xml);
    ReportSplit at_path = ReportSplit::merged;
    const auto at = parse_aggregate_report_at(xml.size(), reads.read_at(), limits, run, 1, &at_path);
    EXPECT_EQ(at_path, expected_at.value_or(expected)) << name << ", read piece by piece";
    if (at_path == ReportSplit::merged) {
      ASSERT_TRUE(at.has_value()) << name;
      EXPECT_TRUE(*at == serial) << name << ": serial " << describe(serial) << ", read piece by piece "
                                 << describe(*at);
    } else {
      EXPECT_FALSE(at.has_value()) << name << ": " << describe(*at);
    }
  }
  expect_streamed_as_serial(name, xml, limits, serial);
}

TEST(DmarcReportSplit, MergesToTheSerialResult) {
  Doc plain(200);
  Doc rfc9990(200);
  rfc9990.root = "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">";
  rfc9990.before = "<version>2.0</version>" + rfc9990.before;
  Doc version_only(200);  // RFC 9990 by its version, without the namespace
  version_only.before = "<version>2.0</version>" + version_only.before;
  Doc extended(200);
  extended.root = "<feedback\n xmlns:x='urn:example:ext' note=\"a > b\">";
  for (auto& r : extended.records) {
    r.insert(r.find("<identifiers>"), "<x:extra><x:record><x:row>1</x:row></x:record></x:extra>");
  }
  Doc commented(200);
  commented.records[40] = "<!-- <record> --><?pi <record>?>" + commented.records[40];
  Doc one(1);
  Doc bom(200);
  bom.decl = "\xEF\xBB\xBF<?xml version='1.0' encoding='utf-8' standalone='yes'?>\n<!-- prolog -->\n";
  Doc latin1(200);
  latin1.decl = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n";
  latin1.before.replace(latin1.before.find("acme"), 4, "acm\xE9");
  latin1.records[190].replace(latin1.records[190].find("<envelope_from>e"), 16, "<envelope_from>\xE9");
  const std::vector<std::pair<std::string, std::string>> docs = {
      {"rfc7489", plain.str()},       {"rfc9990", rfc9990.str()},        {"version 2.0", version_only.str()},
      {"extensions", extended.str()}, {"trap in head", commented.str()}, {"one record", one.str()},
      {"latin-1", latin1.str()},      {"byte order mark", bom.str()},
  };
  for (const auto& [name, xml] : docs) {
    // The one record is before the middle: only a document in memory is cut there (it is searched whole).
    expect_as_serial(name, xml, ReportSplit::merged, {},
                     name == "one record" ? ReportSplit::none : ReportSplit::merged);
    const auto r = parse_aggregate_report(xml, {}, on_two_threads, 1);
    ASSERT_TRUE(r.ok()) << name << ": " << r.error;
    EXPECT_EQ(r.report->records.size(), name == "one record" ? 1U : 200U) << name;
    Reads reads(xml);
    ReportSplit streamed = ReportSplit::none;
    EXPECT_TRUE(parse_aggregate_report_at(xml.size(), reads.read_at(), {}, RunBoth{}, 1, &streamed) == r)
        << name;
    EXPECT_EQ(streamed, ReportSplit::streamed) << name;
  }
  const auto r9990 = parse_aggregate_report(rfc9990.str(), {}, on_two_threads, 1);
  EXPECT_EQ(r9990.report->schema, ReportSchema::Rfc9990);
  EXPECT_EQ(r9990.report->version, "2.0");
  const auto l1 = parse_aggregate_report(latin1.str(), {}, on_two_threads, 1);
  EXPECT_EQ(l1.report->metadata.org_name, "acm\u00e9.example");
  EXPECT_EQ(l1.report->records[190].envelope_from, "\u00e9190.example");
}

// A "<record>" that is not a record directly under <feedback> makes a half fail: the serial parse decides.
TEST(DmarcReportSplit, FallsBackWhenTheCutIsNotBetweenRecords) {
  Doc d(200);
  d.root = "<feedback xmlns:x=\"urn:example:ext\">";
  std::vector<std::pair<std::string, std::string>> traps = {
      {"comment", "<!-- <record> -->\n"},
      {"cdata", "<![CDATA[ <record> ]]>\n"},
      {"processing instruction", "<?keep <record> ?>\n"},
      {"inside an extension", "<x:ext><record><row><count>1</count></row></record></x:ext>\n"},
      {"inside an unknown element", "<other><record><row><count>1</count></row></record></other>\n"},
  };
  // A whole record in a comment or PI leaves a tail that is well-formed on its own: "-->" and "?>" are
  // plain text in content. Only the head fails there, and that alone must stop the merge.
  const auto hidden = numbered_record(999);
  traps.emplace_back("record in a comment", "<!-- " + hidden + " -->");
  traps.emplace_back("record in a PI", "<?keep " + hidden + " ?>");
  for (const auto& [name, trap] : traps) {
    const auto xml = d.with_trap_at_cut(trap);
    expect_as_serial(name, xml, ReportSplit::fell_back);
    EXPECT_TRUE(parse_aggregate_report(xml).ok()) << name;  // each is a valid report all the same
  }
  // The same constructs left open are no report at all, and say where, from the serial parse.
  for (const std::string trap : {"<!-- <record>", "<?keep <record>", "<x:ext><record>"}) {
    const auto xml = d.with_trap_at_cut(trap);
    expect_as_serial(trap, xml, ReportSplit::fell_back);
    const auto r = parse_aggregate_report(xml);
    EXPECT_FALSE(r.ok()) << trap;
    EXPECT_EQ(r.error.rfind("line ", 0), 0U) << r.error;
  }
}

// Each half checks its records' schema rules on its own thread; a record that breaks one sends the document
// to the serial parse, which names it. The report-wide rules are checked on the merged report.
TEST(DmarcReportSplit, ChecksRecordsInTheHalvesAndTheRestOnTheMergedReport) {
  Doc d(200);
  d.records[150].replace(d.records[150].find("<dkim>"), 6, "<dkim>P");
  const auto xml = d.str();
  expect_as_serial("bad dkim in the tail", xml, ReportSplit::fell_back);
  const auto r = parse_aggregate_report(xml, {}, on_two_threads, 1);
  EXPECT_EQ(r.error, "record 151: policy_evaluated/dkim is not pass|fail");
  Doc h(200);
  h.records[20].replace(h.records[20].find("<dkim>"), 6, "<dkim>P");
  expect_as_serial("bad dkim in the head", h.str(), ReportSplit::fell_back);
  Doc ip(200);
  ip.records[199].replace(ip.records[199].find("<source_ip>"), 11, "<source_ip>x");
  expect_as_serial("bad source_ip in the last record", ip.str(), ReportSplit::fell_back);
  Doc no_org(200);
  no_org.before.replace(no_org.before.find("<org_name>"), 10, "<org_x>");
  no_org.before.replace(no_org.before.find("</org_name>"), 11, "</org_x>");
  expect_as_serial("no org_name", no_org.str(), ReportSplit::merged);
}

TEST(DmarcReportSplit, FallsBackOnAnyErrorInAHalf) {
  Doc count(200);
  count.records[150].replace(count.records[150].find("<count>"), 7, "<count>x");
  Doc deep(200);
  deep.records[180].insert(deep.records[180].find("</record>"), "<a><b><c><d><e></e></d></c></b></a>");
  Doc late_metadata(200);
  late_metadata.after = late_metadata.before;
  late_metadata.before.clear();
  Doc late_policy(200);
  late_policy.after = std::string(kPolicy);
  late_policy.before = std::string(kMetadata);
  Doc late_extension(200);
  late_extension.after = "<extension/>";
  const auto whole = Doc(200).str();
  const std::vector<std::pair<std::string, std::string>> docs = {
      {"bad count in the tail", count.str()},
      {"cut short in the tail", whole.substr(0, whole.size() * 3 / 4)},
      {"garbage after the root", whole + "<x/>"},
      {"stray end tag in the tail",
       [&] {
         auto x = whole;
         return x.insert(x.rfind("<record>"), "</record>");
       }()},
      {"metadata after the records", late_metadata.str()},
      {"policy after the records", late_policy.str()},
      {"extension after the records", late_extension.str()},
  };
  for (const auto& [name, xml] : docs) expect_as_serial(name, xml, ReportSplit::fell_back);
  ReportParseLimits shallow;
  shallow.max_depth = 6;
  expect_as_serial("too deep in the tail", deep.str(), ReportSplit::fell_back, shallow);
  EXPECT_FALSE(parse_aggregate_report(deep.str(), shallow).ok());
  ReportParseLimits short_text;
  short_text.max_text = 20;
  Doc long_text(200);
  long_text.records[170].replace(long_text.records[170].find("<comment>"), 9,
                                 "<comment>" + std::string(30, 'x'));
  expect_as_serial("text too long in the tail", long_text.str(), ReportSplit::fell_back, short_text);
}

// The limit is on the report's records, not a half's: the serial parse says it when the sum is too many.
TEST(DmarcReportSplit, CountsRecordsAcrossBothHalves) {
  const auto xml = Doc(200).str();
  ReportParseLimits limits;
  limits.max_records = 199;  // each half has fewer
  expect_as_serial("one too many", xml, ReportSplit::fell_back, limits);
  EXPECT_EQ(parse_aggregate_report(xml, limits, on_two_threads, 1).error, "more than 199 records");
  limits.max_records = 200;
  expect_as_serial("just enough", xml, ReportSplit::merged, limits);
  limits.max_records = 50;  // the head alone has too many
  expect_as_serial("head too many", xml, ReportSplit::fell_back, limits);
}

TEST(DmarcReportSplit, ReadsSeriallyWhatItCannotCutSafely) {
  Doc prefixed(200);
  prefixed.root = "<d:feedback xmlns:d=\"urn:ietf:params:xml:ns:dmarc-2.0\">";
  auto prefixed_xml = prefixed.str();
  prefixed_xml.replace(prefixed_xml.rfind("</feedback>"), 11, "</d:feedback>");
  Doc stateful(200);
  stateful.decl = "<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?>\n";
  Doc doctype(200);
  doctype.decl += "<!DOCTYPE feedback>\n";
  Doc spaced(200);
  for (auto& r : spaced.records) r.replace(0, 8, "<record >");
  const std::vector<std::pair<std::string, std::string>> docs = {
      {"prefixed root", prefixed_xml},
      {"stateful encoding", stateful.str()},
      {"doctype", doctype.str()},
      {"no <record> tag as such", spaced.str()},
      {"empty root", "<?xml version=\"1.0\"?><feedback/>"},
      {"root tag never ends", "<feedback a=\"<record>"},
      {"not a report", "<html><record></record></html>"},
      {"nothing", ""},
  };
  for (const auto& [name, xml] : docs) expect_as_serial(name, xml, ReportSplit::none);
  ReportSplit path = ReportSplit::merged;
  const auto small = Doc(200).str();
  EXPECT_TRUE(parse_aggregate_report(small, {}, on_two_threads, small.size() + 1, &path).ok());
  EXPECT_EQ(path, ReportSplit::none);  // below min_split_bytes
  EXPECT_TRUE(parse_aggregate_report(small, {}, on_two_threads, small.size(), &path).ok());
  EXPECT_EQ(path, ReportSplit::merged);
  EXPECT_TRUE(parse_aggregate_report(small, {}, RunBoth{}, 1, &path).ok());
  EXPECT_EQ(path, ReportSplit::none);  // no way to run two tasks
}

// One parser reading through read_at: a schema failure is the serial verdict as it is (the parser saw the
// serial parse's events); a read that fails (not well-formed, a NUL byte, the file cut short while it is
// read) leaves the document to the caller's serial parse; what the start shows unsafe is not read at all.
TEST(DmarcReportSplit, StreamsWithoutASecondThread) {
  Doc bad_dkim(200);
  bad_dkim.records[150].replace(bad_dkim.records[150].find("<dkim>"), 6, "<dkim>P");
  auto xml = bad_dkim.str();
  ReportSplit path = ReportSplit::none;
  {
    Reads reads(xml);
    const auto r = parse_aggregate_report_at(xml.size(), reads.read_at(), {}, RunBoth{}, 1, &path);
    EXPECT_EQ(path, ReportSplit::streamed);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->error, "record 151: policy_evaluated/dkim is not pass|fail");
  }
  auto with_nul = Doc(400).str();
  ASSERT_GT(with_nul.size(), 2 * kReportStartBytes);
  with_nul[with_nul.size() - 100] = '\0';
  Doc doctype(200);
  doctype.decl += "<!DOCTYPE feedback>\n";
  const auto whole = Doc(200).str();
  const std::vector<std::tuple<std::string, std::string, ReportSplit>> cases = {
      {"NUL byte after the start", with_nul, ReportSplit::fell_back},
      {"cut short", whole.substr(0, whole.size() * 3 / 4), ReportSplit::fell_back},
      {"doctype", doctype.str(), ReportSplit::none},
  };
  for (const auto& [name, doc, expected] : cases) {
    KeepingTally tally;
    Reads reads(doc);
    const auto r = parse_aggregate_report_at(doc.size(), reads.read_at(), {}, RunBoth{}, 1, &path, &tally);
    EXPECT_FALSE(r.has_value()) << name << ": " << describe(*r);
    EXPECT_EQ(path, expected) << name;
    EXPECT_TRUE(tally.records.empty()) << name;
    EXPECT_FALSE(parse_aggregate_report(doc).ok()) << name;  // the caller's serial parse then says why
  }
  EXPECT_EQ(parse_aggregate_report(with_nul).error, "NUL byte in document (not UTF-8 XML)");
  // A file that shrinks while it is read.
  const auto valid = Doc(400).str();
  const ReadAt shrinking = [&valid](std::size_t offset, std::span<char> to) {
    if (offset + to.size() > valid.size() / 2) return false;
    std::copy_n(valid.data() + offset, to.size(), to.data());
    return true;
  };
  KeepingTally tally;
  EXPECT_FALSE(
      parse_aggregate_report_at(valid.size(), shrinking, {}, RunBoth{}, 1, &path, &tally).has_value());
  EXPECT_EQ(path, ReportSplit::fell_back);
  EXPECT_TRUE(tally.records.empty());
}

TEST(DmarcReportSplit, RunBothThatFailsLeavesTheSerialParse) {
  const auto xml = Doc(200).str();
  const auto serial = parse_aggregate_report(xml);
  const RunBoth no_thread = [](const std::function<void()>&, const std::function<void()>&) {
    throw std::runtime_error("no thread");
  };
  const RunBoth runs_nothing = [](const std::function<void()>&, const std::function<void()>&) {};
  const RunBoth first_only = [](const std::function<void()>& first, const std::function<void()>&) {
    first();
  };
  for (const auto* run : {&no_thread, &runs_nothing, &first_only}) {
    ReportSplit path = ReportSplit::none;
    EXPECT_TRUE(parse_aggregate_report(xml, {}, *run, 1, &path) == serial);
    EXPECT_EQ(path, ReportSplit::fell_back);
  }
  int calls = 0;
  const RunBoth counted = [&](const std::function<void()>& first, const std::function<void()>& second) {
    ++calls;
    on_two_threads(first, second);
  };
  EXPECT_TRUE(parse_aggregate_report(xml, {}, counted, 1) == serial);
  EXPECT_EQ(calls, 1);
}

// Both halves on two threads, many times over: the parsers share no state (libxml2's is per context).
TEST(DmarcReportSplit, IsStableOnTwoThreads) {
  Doc d(400);
  const auto xml = d.str();
  const auto serial = parse_aggregate_report(xml);
  ASSERT_TRUE(serial.ok()) << serial.error;
  std::vector<std::thread> callers;
  callers.reserve(2);
  std::atomic<int> same{0};
  for (int t = 0; t < 2; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        ReportSplit path = ReportSplit::none;
        if (parse_aggregate_report(xml, {}, on_two_threads, 1, &path) == serial &&
            path == ReportSplit::merged)
          ++same;
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(same.load(), 20);
}

// The real reports, valid and not: the split parse agrees with the serial one on every file.
TEST(DmarcReportSplit, AgreesOnTheSampleCorpus) {
  namespace fs = std::filesystem;
  int files = 0;
  int merged = 0;
  for (const auto& e : fs::recursive_directory_iterator(CHAINMAIL_DMARC_SAMPLES)) {
    if (!e.is_regular_file() || e.path().extension() != ".xml") continue;
    std::ifstream in(e.path(), std::ios::binary);
    const std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto serial = parse_aggregate_report(xml);
    for (const Runner run : kRunners) {
      ReportSplit path = ReportSplit::none;
      const auto split = parse_aggregate_report(xml, {}, run, 1, &path);
      EXPECT_TRUE(split == serial) << e.path() << ": serial " << describe(serial) << ", split "
                                   << describe(split);
      if (run == &in_turn && path == ReportSplit::merged) ++merged;
    }
    ++files;
  }
  RecordProperty("files", files);
  RecordProperty("merged", merged);
  EXPECT_GE(files, 10);
  EXPECT_GE(merged, files / 2);  // most are cut for real, not read serially
}

// Read piece by piece, a document is never asked for whole: its start, the window at its middle, then each
// half's pieces as libxml2 asks for them.
TEST(DmarcReportReadAt, ReadsTheDocumentPieceByPiece) {
  const auto xml = Doc(2000).str();
  ASSERT_GT(xml.size(), kReportSplitMinBytes);
  const auto serial = parse_aggregate_report(xml);
  ASSERT_TRUE(serial.ok()) << serial.error;
  Reads reads(xml);
  ReportSplit path = ReportSplit::none;
  const auto at =
      parse_aggregate_report_at(xml.size(), reads.read_at(), {}, on_two_threads, kReportSplitMinBytes, &path);
  ASSERT_TRUE(at.has_value());
  EXPECT_TRUE(*at == serial);
  EXPECT_EQ(path, ReportSplit::merged);
  EXPECT_LE(reads.largest(), kReportReadBlockBytes);
  // Every byte once, apart from the window (read again by the tail) and the start (held in memory for both).
  EXPECT_GE(reads.bytes(), xml.size());
  EXPECT_LE(reads.bytes(), xml.size() + kReportMiddleBytes);
  // Outside its sizes it reads nothing.
  Reads none(xml);
  EXPECT_FALSE(
      parse_aggregate_report_at(xml.size(), none.read_at(), {}, on_two_threads, xml.size() + 1, &path));
  EXPECT_EQ(path, ReportSplit::none);
  EXPECT_FALSE(
      parse_aggregate_report_at(kReportSplitMaxBytes + 1, none.read_at(), {}, on_two_threads, 1, &path));
  EXPECT_EQ(path, ReportSplit::none);
  EXPECT_FALSE(parse_aggregate_report_at(kReportSplitMaxBytes + 1, none.read_at(), {}, RunBoth{}, 1, &path));
  EXPECT_EQ(path, ReportSplit::none);
  EXPECT_EQ(none.bytes(), 0U);
  // Without a RunBoth, one parser reads it: every byte exactly once, in pieces.
  Reads once(xml);
  const auto streamed = parse_aggregate_report_at(xml.size(), once.read_at(), {}, RunBoth{}, 1, &path);
  ASSERT_TRUE(streamed.has_value());
  EXPECT_TRUE(*streamed == serial);
  EXPECT_EQ(path, ReportSplit::streamed);
  EXPECT_EQ(once.bytes(), xml.size());
  EXPECT_LE(once.largest(), kReportReadBlockBytes);
}

// A NUL byte, which refused_unread() finds in a document in memory before it is read, and a read that fails
// (the file shrank, an I/O error) fail the half that meets them; before the halves, they leave the document
// uncut. Either way the caller reads it whole, and the serial parse decides.
TEST(DmarcReportReadAt, FailsAHalfOnANulByteOrAFailedRead) {
  const auto xml = Doc(600).str();
  const auto put_nul = [&](std::size_t near) {
    auto d = xml;
    d[d.find("<header_from>h", near) + 13] = '\0';
    return d;
  };
  for (const auto& [name, at, expected] :
       {std::tuple{"in the start", std::size_t{0}, ReportSplit::none},
        std::tuple{"in the head", xml.size() / 4, ReportSplit::fell_back},
        std::tuple{"in the tail", xml.size() * 3 / 4, ReportSplit::fell_back}}) {
    const auto doc = put_nul(at);
    EXPECT_EQ(parse_aggregate_report(doc).error, "NUL byte in document (not UTF-8 XML)") << name;
    for (const Runner run : kRunners) {
      Reads reads(doc);
      ReportSplit path = ReportSplit::merged;
      EXPECT_FALSE(parse_aggregate_report_at(doc.size(), reads.read_at(), {}, run, 1, &path)) << name;
      EXPECT_EQ(path, expected) << name;
    }
  }
  Reads reads(xml);
  const auto failing_from = [&](std::size_t from) -> ReadAt {
    return [&reads, from](std::size_t offset, std::span<char> to) {
      return offset + to.size() <= from && reads.read_at()(offset, to);
    };
  };
  const ReadAt throws = [](std::size_t, std::span<char>) -> bool { throw std::runtime_error("I/O"); };
  const std::vector<std::tuple<std::string, ReadAt, ReportSplit>> readers = {
      {"the start cannot be read", failing_from(10), ReportSplit::none},
      {"the window cannot be read", failing_from(xml.size() / 2 + 10), ReportSplit::none},
      {"shrank in the tail", failing_from(xml.size() - 100), ReportSplit::fell_back},
      {"throws", throws, ReportSplit::none},
  };
  for (const auto& [name, read_at, expected] : readers) {
    for (const Runner run : kRunners) {
      ReportSplit path = ReportSplit::merged;
      EXPECT_FALSE(parse_aggregate_report_at(xml.size(), read_at, {}, run, 1, &path)) << name;
      EXPECT_EQ(path, expected) << name;
    }
  }
}

// What decides the cut must be in the start (prolog and root start tag) and the middle window (a
// "<record>"); otherwise the document is left uncut for the caller, who may then cut it in memory.
TEST(DmarcReportReadAt, LeavesUncutWhatTheStartOrTheWindowDoesNotShow) {
  Doc long_prolog(600);
  long_prolog.decl = "<?xml version=\"1.0\"?>\n<!-- " + std::string(kReportStartBytes, 'c') + " -->\n";
  Doc long_record(600);
  auto xml = long_record.str();
  const auto middle_record = xml.find("<record>", xml.size() / 2);
  const auto wide = xml.find("<identifiers>", middle_record);
  xml.insert(wide,
             "<x:ext xmlns:x=\"urn:example:ext\">" + std::string(3 * kReportMiddleBytes, 'w') + "</x:ext>");
  // The extension pushes the middle into the record it is in, and the next "<record>" out of the window.
  ASSERT_GT(xml.find("<record>", xml.size() / 2) - xml.size() / 2, kReportMiddleBytes);
  for (const auto& [name, doc] :
       {std::pair<std::string, std::string>{"prolog past the start", long_prolog.str()},
        std::pair<std::string, std::string>{"no record in the window", xml}}) {
    expect_as_serial(name, doc, ReportSplit::merged, {}, ReportSplit::none);
  }
}

// Records without their details (ReportParseLimits::keep_record_details off): the same verdict and error text
// as with them, serially and split, and the same records apart from the details.
AggregateReport without_details(AggregateReport r) {
  for (auto& rec : r.records) {
    rec.reasons.clear();
    rec.envelope_from.clear();
    rec.envelope_to.clear();
    rec.dkim_results.clear();
    rec.spf_results.clear();
  }
  return r;
}

void expect_lean_as_full(const std::string& name, const std::string& xml, ReportSplit split_path) {
  ReportParseLimits lean;
  lean.keep_record_details = false;
  const auto full = parse_aggregate_report(xml);
  const auto without = parse_aggregate_report(xml, lean);
  EXPECT_EQ(without.error, full.error) << name;
  ASSERT_EQ(without.ok(), full.ok()) << name;
  if (full.ok()) {
    EXPECT_TRUE(*without.report == without_details(*full.report)) << name;
  }
  expect_as_serial(name + ", without details", xml, split_path, lean);
}

TEST(DmarcReportLean, GivesTheSameVerdictsWithoutTheDetails) {
  const auto broken = [](std::initializer_list<std::pair<int, std::pair<std::string, std::string>>> edits) {
    Doc d(200);
    for (const auto& [record, edit] : edits) {
      auto& r = d.records[static_cast<std::size_t>(record)];
      const auto at = r.find(edit.first);
      if (at == std::string::npos)
        ADD_FAILURE() << "no " << edit.first << " in record " << record;
      else
        r.replace(at, edit.first.size(), edit.second);
    }
    return d.str();
  };
  const std::pair<std::string, std::string> bad_dkim{"<result>pass</result></dkim>",
                                                     "<result>Pass</result></dkim>"};
  const std::pair<std::string, std::string> no_dkim_result{"<result>pass</result></dkim>", "</dkim>"};
  const std::pair<std::string, std::string> bad_spf{"<result>softfail</result>", "<result>soft</result>"};
  const std::pair<std::string, std::string> bad_disposition{"<disposition>", "<disposition>x"};
  Doc no_org(200);
  no_org.before.replace(no_org.before.find("<org_name>"), 10, "<org_x>");
  no_org.before.replace(no_org.before.find("</org_name>"), 11, "</org_x>");
  no_org.records[5].replace(no_org.records[5].find(bad_spf.first), bad_spf.first.size(), bad_spf.second);
  const std::vector<std::tuple<std::string, std::string, ReportSplit>> docs = {
      {"valid", Doc(200).str(), ReportSplit::merged},
      {"bad DKIM result", broken({{50, bad_dkim}}), ReportSplit::fell_back},
      {"DKIM without a result", broken({{51, no_dkim_result}}), ReportSplit::fell_back},
      {"bad SPF result", broken({{60, bad_spf}}), ReportSplit::fell_back},
      {"bad SPF, then bad DKIM in one record", broken({{70, bad_spf}, {70, bad_dkim}}),
       ReportSplit::fell_back},
      {"bad SPF result before a bad disposition", broken({{80, bad_spf}, {90, bad_disposition}}),
       ReportSplit::fell_back},
      {"bad disposition and DKIM result in one record", broken({{80, bad_disposition}, {80, bad_dkim}}),
       ReportSplit::fell_back},
      {"bad SPF result in the tail", broken({{180, bad_spf}}), ReportSplit::fell_back},
      {"no org_name and a bad SPF result", no_org.str(), ReportSplit::fell_back},
  };
  for (const auto& [name, xml, path] : docs) expect_lean_as_full(name, xml, path);
  // Both broken in record 71: DKIM's is named, as check() names it when the record keeps its results.
  EXPECT_EQ(parse_aggregate_report(std::get<1>(docs[4])).error,
            "record 71: auth_results/dkim/result is not a DKIM result");
  // Two broken records: the first is named, whichever rule each breaks, with or without the details.
  EXPECT_EQ(parse_aggregate_report(std::get<1>(docs[5])).error,
            "record 81: auth_results/spf/result is not an SPF result");
}

TEST(DmarcReportLean, AgreesOnTheSampleCorpus) {
  namespace fs = std::filesystem;
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(CHAINMAIL_DMARC_SAMPLES)) {
    if (!e.is_regular_file() || e.path().extension() != ".xml") continue;
    std::ifstream in(e.path(), std::ios::binary);
    const std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ReportParseLimits lean;
    lean.keep_record_details = false;
    const auto full = parse_aggregate_report(xml);
    const auto without = parse_aggregate_report(xml, lean);
    EXPECT_EQ(without.error, full.error) << e.path();
    if (full.ok() && without.ok()) {
      EXPECT_TRUE(*without.report == without_details(*full.report)) << e.path();
    }
    ++files;
  }
  EXPECT_GE(files, 10);
}

}  // namespace
}  // namespace chainmail
