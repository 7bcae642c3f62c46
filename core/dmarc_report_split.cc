// dmarc_report_split.cc - see dmarc_report.h: a large report read as two halves at once (the RunBoth and
// ReadAt overloads of the parser), each by a report_parser::Parser of its own (dmarc_report_parser.h), with
// the serial parse as referee; and a report read through ReadAt by one parser (without a RunBoth).
#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/dmarc_report.h"
#include "core/dmarc_report_parser.h"

namespace chainmail {
namespace {

using report_parser::Parser;
using report_parser::Part;
using report_parser::Piece;
using report_parser::Pieces;
using report_parser::xml_space;

// Two cache lines: the adjacent-line prefetcher fetches lines in pairs.
constexpr std::size_t kCacheLine = 128;

constexpr std::string_view kRecordTag = "<record>";
constexpr std::string_view kCloseRoot = "</feedback>";

// True when the XML declaration names no encoding (UTF-8), or one in which every '<' byte is a '<' and no
// state carries from one character to the next. In a stateful encoding (ISO-2022-JP, UTF-7) the bytes of
// "<record>" can be part of other characters, and the tail would be read in the wrong state. Documents in
// UTF-16 or UTF-32 have NUL bytes and are refused before this; EBCDIC ones have no "<feedback" at the start.
bool split_safe_encoding(std::string_view xml) {
  std::size_t i = xml.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
  if (xml.compare(i, 5, "<?xml") != 0 || i + 5 >= xml.size() || !xml_space(xml[i + 5])) return true;
  const auto close = xml.find("?>", i);
  if (close == std::string_view::npos) return false;
  const auto decl = xml.substr(i, close - i);
  auto at = decl.find("encoding");
  if (at == std::string_view::npos) return true;
  at += 8;
  while (at < decl.size() && xml_space(decl[at])) ++at;
  if (at == decl.size() || decl[at] != '=') return false;
  ++at;
  while (at < decl.size() && xml_space(decl[at])) ++at;
  if (at == decl.size() || (decl[at] != '"' && decl[at] != '\'')) return false;
  const auto end = decl.find(decl[at], at + 1);
  if (end == std::string_view::npos) return false;
  std::string name(decl.substr(at + 1, end - at - 1));
  for (auto& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  const auto digits = [](std::string_view d) {
    return !d.empty() && d.size() <= 2 &&
           std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const std::string_view n = name;
  if (n == "utf-8" || n == "us-ascii") return true;
  if (n.rfind("iso-8859-", 0) == 0) return digits(n.substr(9));
  return n.size() == 12 && n.rfind("windows-125", 0) == 0 && digits(n.substr(11));
}

// Where the root start tag ends (its '>'), when the document's root is an unprefixed <feedback> with content.
// Only such a root is cut, so that the tail's records are matched against the same namespace declarations
// as the whole document's.
std::optional<std::size_t> find_root_end(std::string_view xml) {
  const auto root = report_parser::skip_prolog(xml);
  if (root == std::string_view::npos || xml.compare(root, 9, "<feedback") != 0 || root + 9 >= xml.size())
    return std::nullopt;
  if (const char after = xml[root + 9]; !xml_space(after) && after != '>' && after != '/')
    return std::nullopt;
  // The first '>' outside a quoted attribute value: values may hold '>' (never '<').
  std::size_t end = root + 9;
  for (; end < xml.size(); ++end) {
    const char c = xml[end];
    if (c == '"' || c == '\'') {
      end = xml.find(c, end + 1);
      if (end == std::string_view::npos) return std::nullopt;
    } else if (c == '<') {
      return std::nullopt;
    } else if (c == '>') {
      break;
    }
  }
  if (end >= xml.size() || xml[end - 1] == '/') return std::nullopt;  // not there, or <feedback/>
  return end;
}

// The document cut in two: what each half reads, in turn.
struct Halves {
  Pieces head;
  Pieces tail;
  std::size_t tail_bytes = 0;  // of the document, from the cut on
};

// The speculative split. The head is xml[0, cut) + "</feedback>"; the tail is the prolog and root start tag
// followed by xml[cut, end). Both are read by the serial parser's code with the same options and callbacks,
// so every SECURITY property holds for each. The merged result is the serial one because:
// - The head is well-formed only if, at the cut, the serial parse is in the content of <feedback> itself:
//   "<record>" inside a comment, CDATA section or processing instruction leaves that construct open
//   ("</feedback>" is swallowed by it and the head ends unterminated); inside an element below <feedback>
//   (an extension, another record) "</feedback>" closes the wrong element; inside a tag or an attribute
//   value a '<' is itself an error. A DOCTYPE, where "<record>" could hide in an entity value, is refused
//   before either half is read. Up to the cut, the head sees exactly the serial parse's events.
// - In the content of <feedback>, the serial parse's state is: depth 1, the root's namespace declarations and
//   xml:space, the prolog's encoding. The tail's prolog and root start tag are the document's own bytes, so
//   it is in the same state there, and from the cut on it sees the serial parse's events. (Its own
//   well-formedness matters too: a comment, CDATA or element opened in the head and closed after the cut
//   leaves stray "-->", "]]>" or end tags in the tail.)
// - The Parser's state at the cut that a record depends on is the same in both (the depth, the open fields,
//   the root namespace); what carries over is only the metadata and policy seen (the tail refuses those) and
//   the record count (checked on the sum). Each half checks its own records (by their own contents only);
//   the report-level rules are checked once, on the merged report.
// - Every byte of the document is read by one half or the other (the tail skips only what the head reads),
//   so a NUL byte anywhere, which refused_unread() finds in a document in memory, fails a half when the
//   document is read piece by piece.
// Whatever fails (well-formedness, a limit, a rule, a read, a thread that could not be started) costs a
// serial parse, which then decides alone, with its own messages and line numbers.
std::optional<ReportParseResult> read_halves(const Halves& halves, std::size_t document_bytes,
                                             const ReportParseLimits& limits, const RunBoth& run_both,
                                             RecordTally* tally, ReportSplit& path) {
  // On this thread, before two threads use libxml2 (xmlInitParser is not thread-safe).
  report_parser::init_libxml();
  // Each on cache lines of its own: side by side on this stack, one parser's constantly written members
  // (text, depth) would share lines with the other's constantly read ones.
  struct alignas(kCacheLine) Flag {
    std::atomic<bool> set{false};
  };
  struct alignas(kCacheLine) Half {
    Parser parser;
    bool ok = false;
  };
  Flag abandoned;
  // With a tally, each half counts into one of its own, appended to the caller's only once both were read.
  const std::unique_ptr<RecordTally> head_tally = tally != nullptr ? tally->fresh() : nullptr;
  const std::unique_ptr<RecordTally> tail_tally = tally != nullptr ? tally->fresh() : nullptr;
  Half head{Parser(limits, Part::head, &abandoned.set, head_tally.get())};
  Half tail{Parser(limits, Part::tail, &abandoned.set, tail_tally.get())};
  // The head's vector has room for the whole document's records, so the tail's move in without a copy of
  // the head's.
  if (tally == nullptr) {
    report_parser::reserve_records(head.parser.records(), document_bytes, limits);
    report_parser::reserve_records(tail.parser.records(), halves.tail_bytes, limits);
  }
  // Each half checks its own records as it reads them: that work is then done on both threads at once.
  const auto read_half = [&abandoned](Half& half, const Pieces& pieces) {
    half.ok = half.parser.read(pieces) && half.parser.records_follow_schema();
    if (!half.ok) abandoned.set.store(true, std::memory_order_relaxed);
  };
  const std::function<void()> first = [&] { read_half(head, halves.head); };
  const std::function<void()> second = [&] { read_half(tail, halves.tail); };
  path = ReportSplit::fell_back;
  run_both(first, second);
  if (!head.ok || !tail.ok) return std::nullopt;
  const std::size_t read = head.parser.records_read();
  if (tail.parser.records_read() > limits.max_records - std::min(limits.max_records, read))
    return std::nullopt;
  if (tally != nullptr) {
    tally->append(std::move(*head_tally));
    tally->append(std::move(*tail_tally));
  } else {
    auto& records = head.parser.records();
    auto& more = tail.parser.records();
    records.insert(records.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  path = ReportSplit::merged;
  return head.parser.result();
}

// A document in memory is cut before the first "<record>" at or after its middle (else the last one before
// it), behind the root start tag.
std::optional<ReportParseResult> split_parse(std::string_view xml, const ReportParseLimits& limits,
                                             const RunBoth& run_both, RecordTally* tally, ReportSplit& path) {
  if (!Parser::refused_unread(xml).empty() || !split_safe_encoding(xml)) return std::nullopt;
  const auto root_end = find_root_end(xml);
  if (!root_end) return std::nullopt;
  const std::size_t body = *root_end + 1;
  const std::size_t middle = xml.size() / 2;
  auto cut = xml.find(kRecordTag, std::max(body, middle));
  if (cut == std::string_view::npos && middle > body) {
    cut = xml.rfind(kRecordTag, middle);
    if (cut != std::string_view::npos && cut < body) cut = std::string_view::npos;
  }
  if (cut == std::string_view::npos) return std::nullopt;
  const Halves halves{{Piece{xml.substr(0, cut)}, Piece{kCloseRoot}},
                      {Piece{xml.substr(0, body)}, Piece{xml.substr(cut)}},
                      xml.size() - cut};
  return read_halves(halves, xml.size(), limits, run_both, tally, path);
}

// A document read through read_at is cut where one in memory would be, if its start and the window at its
// middle show it (see parse_aggregate_report_at()).
std::optional<ReportParseResult> split_parse_at(std::size_t size, const ReadAt& read_at,
                                                const ReportParseLimits& limits, const RunBoth& run_both,
                                                RecordTally* tally, ReportSplit& path) {
  // The start, checked as a whole document in memory is (its prolog and root start tag must be in it); both
  // halves read these checked bytes, not the document's again.
  const std::size_t start_bytes = std::min(size, kReportStartBytes);
  const auto start = std::make_unique_for_overwrite<char[]>(start_bytes);
  if (!read_at(0, {start.get(), start_bytes})) return std::nullopt;
  const std::string_view head_start(start.get(), start_bytes);
  if (!Parser::refused_unread(head_start).empty() || !split_safe_encoding(head_start)) return std::nullopt;
  const auto root_end = find_root_end(head_start);
  if (!root_end) return std::nullopt;
  const std::size_t body = *root_end + 1;
  // The first "<record>" at or after the middle, as split_parse() cuts; when the window has none, the caller
  // reads the document whole, and split_parse() looks further.
  const std::size_t from = std::max(body, size / 2);
  if (from >= size) return std::nullopt;
  const std::size_t window_bytes = std::min(size - from, kReportMiddleBytes);
  std::size_t cut = std::string_view::npos;
  {
    const auto window = std::make_unique_for_overwrite<char[]>(window_bytes);
    if (!read_at(from, {window.get(), window_bytes})) return std::nullopt;
    cut = std::string_view(window.get(), window_bytes).find(kRecordTag);
    if (cut == std::string_view::npos) return std::nullopt;
    cut += from;
  }
  const std::size_t in_start = std::min(start_bytes, cut);
  const Halves halves{{Piece{head_start.substr(0, in_start)}, Piece{{}, &read_at, in_start, cut - in_start},
                       Piece{kCloseRoot}},
                      {Piece{head_start.substr(0, body)}, Piece{{}, &read_at, cut, size - cut}},
                      size - cut};
  return read_halves(halves, size, limits, run_both, tally, path);
}

// One parser reads the whole document through read_at, as it parses it (see parse_aggregate_report_at()).
// Its start is checked as the serial parse checks a document in memory (a DOCTYPE is refused before libxml2
// sees it); the rest is looked at as it comes (PieceSource). It counts into a tally of its own, handed over
// only once the document was read, so that a failed read leaves the caller's tally untouched.
std::optional<ReportParseResult> read_through(std::size_t size, const ReadAt& read_at,
                                              const ReportParseLimits& limits, RecordTally* tally,
                                              ReportSplit& path) {
  const std::size_t start_bytes = std::min(size, kReportStartBytes);
  const auto start = std::make_unique_for_overwrite<char[]>(start_bytes);
  if (!read_at(0, {start.get(), start_bytes})) return std::nullopt;
  const std::string_view head(start.get(), start_bytes);
  if (!Parser::refused_unread(head).empty()) return std::nullopt;
  const std::unique_ptr<RecordTally> own = tally != nullptr ? tally->fresh() : nullptr;
  Parser parser(limits, Part::whole, nullptr, own.get());
  if (tally == nullptr) report_parser::reserve_records(parser.records(), size, limits);  // as run() does
  path = ReportSplit::fell_back;
  if (!parser.read({Piece{head}, Piece{{}, &read_at, start_bytes, size - start_bytes}})) return std::nullopt;
  auto result = parser.result();
  if (tally != nullptr && result.ok()) tally->append(std::move(*own));
  path = ReportSplit::streamed;
  return result;
}

}  // namespace

ReportParseResult parse_aggregate_report(std::string_view xml, const ReportParseLimits& limits,
                                         const RunBoth& run_both, std::size_t min_split_bytes,
                                         ReportSplit* split, RecordTally* tally) noexcept {
  ReportSplit path = ReportSplit::none;
  if (run_both && xml.size() >= min_split_bytes && xml.size() <= kReportSplitMaxBytes) {
    try {
      if (auto r = split_parse(xml, limits, run_both, tally, path)) {
        if (split != nullptr) *split = path;
        return std::move(*r);
      }
    } catch (...) {
      // Out of memory, or no thread: the serial parse decides, unless the halves' records were already
      // counted into the tally (then out of memory in the last step, and only a failure is left to report).
      if (tally != nullptr && path == ReportSplit::merged) {
        if (split != nullptr) *split = path;
        return {std::nullopt, "parser failure"};
      }
    }
  }
  if (split != nullptr) *split = path == ReportSplit::merged ? ReportSplit::fell_back : path;
  return parse_aggregate_report(xml, limits, tally);
}

std::optional<ReportParseResult> parse_aggregate_report_at(std::size_t size, const ReadAt& read_at,
                                                           const ReportParseLimits& limits,
                                                           const RunBoth& run_both,
                                                           std::size_t min_split_bytes, ReportSplit* split,
                                                           RecordTally* tally) noexcept {
  ReportSplit path = ReportSplit::none;
  std::optional<ReportParseResult> result;
  if (read_at && size >= min_split_bytes && size <= kReportSplitMaxBytes) {
    try {
      result = run_both ? split_parse_at(size, read_at, limits, run_both, tally, path)
                        : read_through(size, read_at, limits, tally, path);
    } catch (...) {
      // Out of memory, or no thread: the caller's serial parse decides, unless the records were already
      // counted into the tally (as in parse_aggregate_report()).
      result.reset();
      if (tally != nullptr && (path == ReportSplit::merged || path == ReportSplit::streamed))
        result = ReportParseResult{std::nullopt, "parser failure"};
    }
  }
  if (split != nullptr) {
    const bool counted = path == ReportSplit::merged || path == ReportSplit::streamed;
    *split = counted && !result ? ReportSplit::fell_back : path;
  }
  return result;
}

}  // namespace chainmail
