// dmarc_report_test_support.h - what the tests of the parser's ways of reading a report share: the ways
// to run the two halves, generated documents whose records all differ, a document served as a file serves
// it, a tally that keeps what it is given, and the comparisons against the serial parse.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/dmarc_report.h"

namespace chainmail::report_test {

inline void on_two_threads(const std::function<void()>& first, const std::function<void()>& second) {
  std::thread t(first);
  second();
  t.join();
}

inline void in_turn(const std::function<void()>& first, const std::function<void()>& second) {
  first();
  second();
}

// The tail first: a half that fails is not then cut short by the other's failure.
inline void tail_first(const std::function<void()>& first, const std::function<void()>& second) {
  second();
  first();
}

using Runner = void (*)(const std::function<void()>&, const std::function<void()>&);
inline constexpr std::array<Runner, 3> kRunners{&on_two_threads, &in_turn, &tail_first};

// Records that differ in every field, so that a lost, repeated or reordered record shows.
inline std::string numbered_record(int i) {
  const auto n = std::to_string(i);
  std::string r = "<record><row><source_ip>10.";
  r += std::to_string(i / 65536 % 256) + "." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256);
  r += "</source_ip><count>" + std::to_string(i + 1) + "</count>\n<policy_evaluated><disposition>";
  r += i % 3 == 0 ? "none" : i % 3 == 1 ? "quarantine" : "reject";
  r += "</disposition><dkim>";
  r += i % 2 == 0 ? "pass" : "fail";
  r += "</dkim><spf>fail</spf>";
  if (i % 5 == 0) r += "<reason><type>forwarded</type><comment>c" + n + "</comment></reason>";
  r += "</policy_evaluated></row>\n<identifiers><header_from>h" + n + ".example</header_from>";
  r += "<envelope_from>e" + n + ".example</envelope_from></identifiers>\n<auth_results>";
  for (int k = 0; k <= i % 2; ++k) {
    r += "<dkim><domain>d" + n + ".example</domain><selector>s" + std::to_string(k) +
         "</selector><result>pass</result></dkim>";
  }
  r += "<spf><domain>b" + n + ".example</domain><scope>mfrom</scope><result>softfail</result></spf>";
  r += "</auth_results></record>\n";
  return r;
}

inline constexpr std::string_view kMetadata = R"(<report_metadata><org_name>acme.example</org_name>
<email>r@acme.example</email><report_id>r-1</report_id><date_range><begin>100</begin><end>200</end>
</date_range></report_metadata>
)";
inline constexpr std::string_view kPolicy =
    "<policy_published><domain>example.com</domain><p>reject</p><pct>100</pct></policy_published>\n";

struct Doc {
  std::string decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  std::string root = "<feedback>";
  std::string before = std::string(kMetadata) + std::string(kPolicy);  // ahead of the records
  std::vector<std::string> records;
  std::string after;  // behind the records

  explicit Doc(int n) {
    for (int i = 0; i < n; ++i) records.push_back(numbered_record(i));
  }

  std::string str() const {
    std::string out = decl + root + "\n" + before;
    for (const auto& r : records) out += r;
    return out + after + "</feedback>\n";
  }

  // The document with `trap` inserted ahead of a record such that the "<record>" in it is where the
  // document is cut (the first one at or after the middle).
  std::string with_trap_at_cut(std::string_view trap) const {
    const auto trap_record = trap.find("<record>");
    for (std::size_t k = 1; k < records.size(); ++k) {
      Doc d = *this;
      d.records.insert(d.records.begin() + static_cast<std::ptrdiff_t>(k), std::string(trap));
      auto doc = d.str();
      const auto at = doc.find(records[k]) - trap.size() + trap_record;
      if (doc.find("<record>", doc.size() / 2) == at) return doc;
    }
    ADD_FAILURE() << "no place puts the trap at the cut: " << trap;
    return {};
  }
};

inline std::string describe(const ReportParseResult& r) {
  if (!r.ok()) return "error \"" + r.error + "\"";
  return std::to_string(r.report->records.size()) + " records";
}

// A document as a file gives it (parse_aggregate_report_at()): read_at over bytes in memory, on both halves'
// threads at once, counting what is asked for.
class Reads {
 public:
  explicit Reads(std::string_view doc) : doc_(doc) {}

  ReadAt read_at() {
    return [this](std::size_t offset, std::span<char> to) {
      if (offset > doc_.size() || to.size() > doc_.size() - offset) return false;
      std::copy_n(doc_.data() + offset, to.size(), to.data());
      const std::lock_guard lock(mutex_);
      bytes_ += to.size();
      largest_ = std::max(largest_, to.size());
      return true;
    };
  }
  std::size_t bytes() {
    const std::lock_guard lock(mutex_);
    return bytes_;
  }
  std::size_t largest() {
    const std::lock_guard lock(mutex_);
    return largest_;
  }

 private:
  std::string_view doc_;
  std::mutex mutex_;
  std::size_t bytes_ = 0;
  std::size_t largest_ = 0;
};

// A RecordTally that keeps what it is given, in order (the summary's counts are tested in
// dmarc_summary_test.cc).
class KeepingTally final : public RecordTally {
 public:
  void add(DmarcRecord&& record) override { records.push_back(std::move(record)); }
  std::unique_ptr<RecordTally> fresh() const override { return std::make_unique<KeepingTally>(); }
  void append(RecordTally&& later) noexcept override {
    auto& more = static_cast<KeepingTally&>(later).records;
    for (auto& r : more) records.push_back(std::move(r));  // tests only: an allocation failure ends the test
  }
  std::vector<DmarcRecord> records;
};

// Parsed with a tally, a document gets the verdict and error text it gets without one; a report comes with
// no records, and the tally holds the serial parse's, in document order.
inline void expect_tally_as_serial(const std::string& name, const ReportParseResult& serial,
                                   const ReportParseResult& with_tally, const KeepingTally& tally) {
  EXPECT_EQ(with_tally.error, serial.error) << name << ", with a tally";
  ASSERT_EQ(with_tally.ok(), serial.ok()) << name << ", with a tally";
  if (!serial.ok()) return;
  EXPECT_TRUE(with_tally.report->records.empty()) << name << ", with a tally";
  auto as_kept = *with_tally.report;
  as_kept.records = tally.records;
  EXPECT_TRUE(as_kept == *serial.report) << name << ", with a tally: " << tally.records.size() << " of "
                                         << serial.report->records.size() << " records";
}

// Read through read_at by one parser (no RunBoth): the serial result, schema failures included, whenever the
// document could be read; otherwise nothing, and nothing counted. A valid report is always read that way.
inline void expect_streamed_as_serial(const std::string& name, std::string_view xml,
                                      const ReportParseLimits& limits, const ReportParseResult& serial) {
  for (const bool with_tally : {false, true}) {
    KeepingTally tally;
    Reads reads(xml);
    ReportSplit path = ReportSplit::merged;
    const auto streamed = parse_aggregate_report_at(xml.size(), reads.read_at(), limits, RunBoth{}, 1, &path,
                                                    with_tally ? &tally : nullptr);
    // A valid report is streamed, unless its start does not show its root (a prolog longer than the start).
    if (serial.ok()) {
      EXPECT_NE(path, ReportSplit::fell_back) << name << ", streamed";
    }
    if (path != ReportSplit::streamed) {
      EXPECT_FALSE(streamed.has_value()) << name << ", streamed: " << describe(*streamed);
      EXPECT_TRUE(tally.records.empty()) << name << ", streamed: counted, then left to the caller";
      continue;
    }
    ASSERT_TRUE(streamed.has_value()) << name;
    if (with_tally) {
      expect_tally_as_serial(name + ", streamed", serial, *streamed, tally);
    } else {
      EXPECT_TRUE(*streamed == serial)
          << name << ": serial " << describe(serial) << ", streamed " << describe(*streamed);
    }
    // Block by block: never the whole document in one read.
    EXPECT_LE(reads.largest(), kReportReadBlockBytes) << name;
  }
}

}  // namespace chainmail::report_test
