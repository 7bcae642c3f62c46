// dmarc_summary.h - what `chainmail dmarc` shows: aggregate reports folded into per-report rows and a
// per-source aggregation, filtered, and rendered as an aligned table or CSV (the JSON form is in cli/).
//
// DmarcSummary::add() takes one parsed report at a time and keeps only what is shown: one small row per
// report (organisation, id, period, domain, policy, counts) and one counter per distinct (source IP,
// header_from, disposition, DKIM, SPF). The report itself is not kept, so memory grows with the number of
// distinct rows, not with the size of the corpus. The same report seen twice (a file and its copy in the
// Maildir, say) is counted once: reports are identified by organisation, report id, domain and period.
//
// SECURITY: every field is attacker text. The table renderer replaces control characters (a report cannot
// move the cursor or forge lines on an operator's terminal); CSV quotes per RFC 4180.
//
// DIAGNOSTICS: none; nothing here prints or throws (apart from std::bad_alloc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/dmarc_report.h"

namespace chainmail {

// Which reports are shown. A report passes when its period overlaps [since, until], its policy domain is one
// of `domains` (case-insensitive; empty = any) and its organisation name or contact address contains one
// of `reporters` (case-insensitive; empty = any).
struct DmarcFilter {
  std::optional<std::int64_t> since;  // seconds since the epoch, inclusive
  std::optional<std::int64_t> until;  // seconds since the epoch, inclusive
  std::vector<std::string> domains;
  std::vector<std::string> reporters;

  bool matches(const AggregateReport& report) const;
};

// "YYYY-MM-DD" (a UTC day) -> seconds since the epoch at its start; nullopt when malformed.
std::optional<std::int64_t> parse_day(std::string_view text);
// Seconds since the epoch -> "YYYY-MM-DD HH:MM:SS" (UTC).
std::string format_time(std::int64_t t);

// Messages by evaluated result: of one report (ReportRow), or of the records counted so far (SourceTally).
struct MessageCounts {
  std::uint64_t messages = 0;
  std::uint64_t dmarc_pass = 0;  // messages with DKIM or SPF pass in policy_evaluated
  std::uint64_t dmarc_fail = 0;
  std::uint64_t dkim_pass = 0;
  std::uint64_t dkim_fail = 0;
  std::uint64_t spf_pass = 0;
  std::uint64_t spf_fail = 0;

  void add(std::uint64_t n, bool dkim_pass, bool spf_pass);
  MessageCounts& operator+=(const MessageCounts& o);
};

// One report, as shown.
struct ReportRow : MessageCounts {
  std::string org_name;
  std::string email;
  std::string report_id;
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::string domain;
  std::string policy;  // p, e.g. "reject"
};

// One aggregation key: who sent mail as which From domain, what the receiver did, and why.
struct SourceKey {
  std::string source_ip;
  std::string header_from;
  std::string disposition;
  std::string dkim;
  std::string spf;
  bool operator<(const SourceKey& o) const {
    return std::tie(source_ip, header_from, disposition, dkim, spf) <
           std::tie(o.source_ip, o.header_from, o.disposition, o.dkim, o.spf);
  }
};

// One row of the sources table. Its key is the summary's own, not a copy (1,670 rows of five strings each
// were a third of the heap of the 1 MB report): a row is valid while its DmarcSummary lives and takes no more
// reports.
struct SourceRow {
  const SourceKey* key = nullptr;
  std::uint64_t messages = 0;
  std::uint64_t reports = 0;  // how many reports mention this key
  std::string ptr;            // reverse DNS, filled in by the caller when asked for
};

// What one summary may hold, whatever the corpus: rows past a cap are still counted, in the totals and (for
// sources) in one "(other)" row, but not listed (a report's new sources are taken in key order, so which ones
// are listed does not depend on how its records were read). Rendering costs about 1 KB per row at its peak;
// the defaults keep `chainmail dmarc` under 64 MB.
struct DmarcSummaryLimits {
  std::size_t max_reports = 10000;  // listed reports (and the ids remembered to spot duplicates)
  std::size_t max_sources = 30000;  // distinct source keys
};

// The source key that collects the sources past DmarcSummaryLimits::max_sources.
inline constexpr std::string_view kOtherSources = "(other)";

// What is counted per source key: in a SourceTally, the messages and records of one report; in a
// DmarcSummary, the messages and the reports that mention it. One type, so that a tally's entries move into
// the summary node and all.
struct SourceCounts {
  std::uint64_t messages = 0;
  std::uint64_t records = 0;
  std::uint64_t reports = 0;
};

// One report's records as the summary counts them: messages per source key, and the report's totals. The
// parser fills it record by record (RecordTally: on both threads of a split parse, no record stored), and
// DmarcSummary::add() folds it in. A tally is one report's: each of its keys counts as one report.
class SourceTally final : public RecordTally {
 public:
  void add(DmarcRecord&& record) override;
  std::unique_ptr<RecordTally> fresh() const override { return std::make_unique<SourceTally>(); }
  // `later` must be a SourceTally. Its entries are moved over node by node (no allocation, so no failure).
  void append(RecordTally&& later) noexcept override;

  std::uint64_t messages() const { return totals_.messages; }

 private:
  friend class DmarcSummary;
  MessageCounts totals_;
  // Ordered, not hashed: see DmarcSummary::sources_.
  std::map<SourceKey, SourceCounts> sources_;
};

class DmarcSummary {
 public:
  explicit DmarcSummary(DmarcFilter filter = {}, DmarcSummaryLimits limits = {})
      : filter_(std::move(filter)), limits_(limits) {}

  enum class Added { Counted, Filtered, Duplicate };
  Added add(const AggregateReport& report);
  // A report parsed with `tally` (its records counted there, not kept).
  Added add(const AggregateReport& report, SourceTally&& tally);

  // Reports sorted by begin, organisation, report id.
  std::vector<ReportRow> reports() const;
  // Sources sorted by messages (descending), then key; each row points to its key in this summary.
  std::vector<SourceRow> sources() const;

  std::uint64_t messages() const { return messages_; }
  std::uint64_t filtered() const { return filtered_; }
  std::uint64_t duplicates() const { return duplicates_; }
  // Reports counted but not listed, and records folded into the "(other)" source, because of the limits.
  std::uint64_t unlisted_reports() const { return unlisted_reports_; }
  std::uint64_t folded_sources() const { return folded_sources_; }

 private:
  using ReportId = std::tuple<std::string, std::string, std::string, std::int64_t, std::int64_t>;
  DmarcFilter filter_;
  DmarcSummaryLimits limits_;
  std::map<ReportId, ReportRow> reports_;
  // Ordered, not hashed: the keys are attacker text, and a tree stays O(log n) whatever they are (a hash
  // table with a fixed hash can be fed colliding keys); it also costs fewer instructions than hashing five
  // strings per record did.
  std::map<SourceKey, SourceCounts> sources_;
  std::uint64_t unlisted_reports_ = 0;
  std::uint64_t folded_sources_ = 0;
  std::uint64_t messages_ = 0;
  std::uint64_t filtered_ = 0;
  std::uint64_t duplicates_ = 0;
};

// Which tables are rendered.
enum class DmarcView { Reports, Sources, All };

// Aligned text tables with a header line each ("Reports", "Sources"); with_ptr adds the PTR column.
std::string render_dmarc_table(const std::vector<ReportRow>& reports, const std::vector<SourceRow>& sources,
                               DmarcView view, bool with_ptr);
// RFC 4180 CSV (CRLF line ends). View All writes the reports table, an empty line, then the sources table.
std::string render_dmarc_csv(const std::vector<ReportRow>& reports, const std::vector<SourceRow>& sources,
                             DmarcView view, bool with_ptr);
// One CSV field: quoted when it holds a comma, a quote, CR or LF (or starts/ends with a space), quotes
// doubled.
std::string csv_field(std::string_view text);
// Control characters and DEL replaced by '?', so a field cannot break a terminal line.
std::string printable(std::string_view text);

}  // namespace chainmail
