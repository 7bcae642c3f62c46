// dmarc_report.h - the DMARC aggregate report model and its parser (RFC 7489 appendix C, RFC 9990).
//
// parse_aggregate_report() turns the XML of one aggregate report (already decompressed; a buffer, no I/O)
// into an AggregateReport, or says why it is not one. Both schemas are read: RFC 7489's (no namespace) and
// RFC 9990's (namespace urn:ietf:params:xml:ns:dmarc-2.0); elements are matched by local name, unknown ones
// are skipped. Enumerated values are checked as the schemas spell them ("pass", not "Pass"): a report that
// does not follow its schema is Invalid, so that what reaches Reports.New can be trusted by the tools reading
// it.
//
// A large report can be read as two halves at once (the RunBoth overload): core starts no thread, the caller
// runs the two tasks. The result is the serial parse's in every case; when the cut is not provably between
// two records, or anything fails in a half, the document is simply parsed again serially. A document that is
// not in memory can be read that way too (parse_aggregate_report_at()): core asks the caller for its bytes
// through a callback, and still does no I/O of its own; without a RunBoth, one parser reads it through.
//
// SECURITY: the input is attacker data. libxml2's SAX2 parser reads it with XML_PARSE_NONET, without DTD
// loading, validation or entity substitution, and with libxml2's own size limits kept (no XML_PARSE_HUGE). A
// document with a DOCTYPE is Invalid before libxml2 sees it (so neither billion-laughs nor external entities
// can be declared), and again if the parser meets a DTD, an entity declaration or an entity reference.
// chainmail's external entity loader refuses everything, so no file or URL is ever opened. Element depth and
// text length are capped.
//
// DIAGNOSTICS: an Invalid result carries a short reason (libxml2's message or the schema rule broken); it is
// attacker-influenced text: cut and escape it before logging. Nothing is thrown; nothing is printed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace chainmail {

enum class ReportSchema { Rfc7489, Rfc9990 };

struct DmarcReportMetadata {
  std::string org_name;
  std::string email;
  std::string extra_contact_info;
  std::string report_id;
  std::int64_t begin = 0;  // date_range, seconds since the epoch (UTC)
  std::int64_t end = 0;
  std::vector<std::string> errors;

  bool operator==(const DmarcReportMetadata&) const = default;
};

struct DmarcPolicyPublished {
  std::string domain;
  std::string adkim;  // "r" or "s"; empty when absent
  std::string aspf;
  std::string p;  // none, quarantine, reject
  std::string sp;
  std::string np;                // RFC 9990
  std::optional<int> pct;        // RFC 7489
  std::string fo;                // as written
  std::string testing;           // RFC 9990: "y" or "n"
  std::string discovery_method;  // RFC 9990: "psl" or "treewalk"

  bool operator==(const DmarcPolicyPublished&) const = default;
};

struct DmarcAuthResult {
  std::string domain;
  std::string selector;  // DKIM only
  std::string scope;     // SPF only (mfrom, helo)
  std::string result;    // as the schema spells it

  bool operator==(const DmarcAuthResult&) const = default;
};

struct DmarcRecord {
  std::string source_ip;
  std::uint64_t count = 0;
  std::string disposition;  // none, quarantine, reject (RFC 9990 also pass)
  std::string dkim;         // policy_evaluated: pass or fail
  std::string spf;
  std::vector<std::string> reasons;  // policy_evaluated/reason/type values
  std::string header_from;
  std::string envelope_from;
  std::string envelope_to;
  std::vector<DmarcAuthResult> dkim_results;
  std::vector<DmarcAuthResult> spf_results;

  bool operator==(const DmarcRecord&) const = default;
};

struct AggregateReport {
  ReportSchema schema = ReportSchema::Rfc7489;
  std::string version;  // empty when absent
  DmarcReportMetadata metadata;
  DmarcPolicyPublished policy;
  std::vector<DmarcRecord> records;

  std::uint64_t message_count() const;  // the sum of the records' counts
  bool operator==(const AggregateReport&) const = default;
};

struct ReportParseLimits {
  std::size_t max_depth = 32;                     // element nesting; <feedback> is depth 1
  std::size_t max_text = std::size_t{64} * 1024;  // characters of one element's text
  std::size_t max_records = 1000000;              // records in one report
  // Whether each record keeps its auth_results, reasons and envelope_from/envelope_to. They are read and
  // checked either way, so the verdict and its error text are the same; a caller that only counts records by
  // source, From domain and evaluated results (`chainmail dmarc`) leaves them out, and with them two
  // allocations per record: for a 1 MB report about a millisecond of the parse.
  bool keep_record_details = true;
};

// Where a report's records go when the caller counts them instead of keeping them (`chainmail dmarc`, whose
// summary needs a few fields of each): the parser hands each record over once it has closed and follows the
// schema (with the details keep_record_details says), and the report's `records` stay empty. Verdicts and
// error texts are the same as when records are kept. A document read as two halves gives each half a tally
// of its own (fresh(), used on that half's thread), and appends both to the caller's, in document order,
// once both halves were read; a record is then counted where it was read, on both threads at once, and
// never stored, moved or merged. When the parse fails, what the tally holds is unspecified: drop it.
class RecordTally {
 public:
  virtual ~RecordTally() = default;
  virtual void add(DmarcRecord&& record) = 0;
  // An empty tally of the same kind.
  virtual std::unique_ptr<RecordTally> fresh() const = 0;
  // The records of `later` (a tally from fresh()), as if added after this one's. Must not fail: the halves'
  // records are counted nowhere else.
  virtual void append(RecordTally&& later) noexcept = 0;
};

// Either a report, or the reason the document is not a valid one.
struct ReportParseResult {
  std::optional<AggregateReport> report;
  std::string error;  // set exactly when report is empty
  bool ok() const { return report.has_value(); }
  bool operator==(const ReportParseResult&) const = default;
};

ReportParseResult parse_aggregate_report(std::string_view xml, const ReportParseLimits& limits = {},
                                         RecordTally* tally = nullptr) noexcept;

// Runs both tasks and returns once both have finished; one of them may run on another thread. core/ starts no
// thread itself: the caller says how (cli/ with a std::thread). The tasks never throw. If run_both throws, it
// must be before either task started (as std::thread's constructor does); the document is then read serially.
using RunBoth = std::function<void(const std::function<void()>& first, const std::function<void()>& second)>;

// How parse_aggregate_report() with a RunBoth read the document (for tests and benchmarks).
enum class ReportSplit {
  none,       // read serially: too small, too large, or no safe place to cut it was found
  merged,     // read as two halves at once, and their results merged
  fell_back,  // the halves (or the streamed document) were read and failed, or the merge did not fit
  streamed,   // parse_aggregate_report_at() without run_both: read through read_at by one parser
};

// The sizes of document that parse_aggregate_report() with a RunBoth reads as two halves (the least is the
// default). Below the least, a second parser costs more than it saves. Above the most, the document is read
// serially: libxml2's own limits without XML_PARSE_HUGE (10,000,000 bytes of one text, comment or attribute
// value, of names in its dictionary, or of look-ahead in its input buffer) are partly checked against where
// a construct falls in libxml2's buffer, which is not the same in a half as in the whole document; below
// this size none of them can be reached, so they decide nothing in either parse.
inline constexpr std::size_t kReportSplitMinBytes = std::size_t{256} * 1024;
inline constexpr std::size_t kReportSplitMaxBytes = std::size_t{8} << 20;

// As parse_aggregate_report(xml, limits), with the same result in every case; a document of at least
// min_split_bytes (and at most kReportSplitMaxBytes) is read as two halves at once through run_both. The
// document is cut before a <record> near its middle: the first half is the document up to there with
// "</feedback>" added, the second is its prolog and root start tag followed by the rest. If either half fails
// in any way (not well-formed, a limit, anything), the document is parsed again serially and that parse alone
// decides, so verdicts and error texts (with their line numbers) are the serial ones. `split`, when given,
// says which path was taken.
ReportParseResult parse_aggregate_report(std::string_view xml, const ReportParseLimits& limits,
                                         const RunBoth& run_both,
                                         std::size_t min_split_bytes = kReportSplitMinBytes,
                                         ReportSplit* split = nullptr, RecordTally* tally = nullptr) noexcept;

// Random access to a document that is not held in memory (cli/ reads it from a file): copies its bytes
// [offset, offset + to.size()) into `to`; false when they cannot all be read (the file shrank, an I/O error).
// Called from both halves' threads at once.
using ReadAt = std::function<bool(std::size_t offset, std::span<char> to)>;

// What parse_aggregate_report_at() reads before it decides where to cut: the document's start, which must
// hold its prolog and root start tag, and a window from its middle on, which must hold a "<record>".
inline constexpr std::size_t kReportStartBytes = std::size_t{16} * 1024;
inline constexpr std::size_t kReportMiddleBytes = std::size_t{16} * 1024;
// The most it asks read_at for at once as it parses (each reader's buffer); the start and window are smaller.
inline constexpr std::size_t kReportReadBlockBytes = std::size_t{64} * 1024;

// As the RunBoth overload, for a document of `size` bytes that stays where it is (a file) and is read through
// read_at: each half reads its bytes as it parses them, a block (kReportReadBlockBytes) at a time into a
// buffer it reuses, so the document is never held whole (a 1 MB report is 256 fresh pages the caller need
// not fault in). The cut is
// the one the RunBoth overload makes, decided from the document's start and middle window alone; both halves
// read the start from the copy that was checked, not from the document again.
// Returns the merged result (the serial parse's, as for the RunBoth overload) when both halves were read and
// merged. Otherwise nullopt, and `split` says why:
// - none: the document was not cut (too small or too large, no run_both or read_at, the start or the window
//   does not show a safe cut, a read before the halves failed); it may still be cut once it is in memory;
// - fell_back: the halves were read and one failed in any way (a read, a NUL byte, anything the serial parse
//   may report); reading it as two halves again would fail again.
// Either way the caller reads the document whole, and parse_aggregate_report() decides; `tally` has then
// been given nothing (the halves count into tallies of their own until both were read).
// Without run_both (one thread), the document is read the same way by one parser, from its start to its end
// (`split` streamed): never held whole either. The result is then the serial parse's too, schema failures
// included (the same parser code sees the same events); only when the read itself fails (not well-formed, a
// NUL byte, a read error: which of them comes first may differ from the parse in memory) is it nullopt and
// fell_back, and the caller's serial parse decides.
std::optional<ReportParseResult> parse_aggregate_report_at(std::size_t size, const ReadAt& read_at,
                                                           const ReportParseLimits& limits,
                                                           const RunBoth& run_both,
                                                           std::size_t min_split_bytes = kReportSplitMinBytes,
                                                           ReportSplit* split = nullptr,
                                                           RecordTally* tally = nullptr) noexcept;

// True when the bytes look like the start of an aggregate report (an XML document whose root element is
// <feedback>), so a part of unknown type can be recognised. Cheap; parses nothing.
bool looks_like_aggregate_report(std::string_view data);

}  // namespace chainmail
