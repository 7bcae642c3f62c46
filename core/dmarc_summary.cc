// dmarc_summary.cc - see dmarc_summary.h.
#include "core/dmarc_summary.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>

namespace chainmail {
namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool icontains(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                     [](char x, char y) { return lower(x) == lower(y); }) != hay.end();
}

std::string two(unsigned v) {
  std::string s = std::to_string(v);
  return s.size() < 2 ? "0" + s : s;
}

using Cells = std::vector<std::string>;

std::string_view number_cell(std::uint64_t n, std::string& scratch) {
  std::array<char, 24> buf{};
  const auto end = std::to_chars(buf.data(), buf.data() + buf.size(), n).ptr;
  scratch.assign(buf.data(), end);
  return scratch;
}

Cells report_header() {
  return {"org",        "report_id",  "begin",     "end",       "domain",   "policy",  "messages",
          "dmarc_pass", "dmarc_fail", "dkim_pass", "dkim_fail", "spf_pass", "spf_fail"};
}

// A report row's cell in `column` (of report_header()); a time or a count is formatted into `scratch`.
std::string_view report_cell(const ReportRow& r, std::size_t column, std::string& scratch) {
  static constexpr std::array<std::uint64_t MessageCounts::*, 7> kCounts = {
      &MessageCounts::messages,  &MessageCounts::dmarc_pass, &MessageCounts::dmarc_fail,
      &MessageCounts::dkim_pass, &MessageCounts::dkim_fail,  &MessageCounts::spf_pass,
      &MessageCounts::spf_fail};
  switch (column) {
    case 0:
      return r.org_name;
    case 1:
      return r.report_id;
    case 2:
      return scratch = format_time(r.begin);
    case 3:
      return scratch = format_time(r.end);
    case 4:
      return r.domain;
    case 5:
      return r.policy;
    default:
      return number_cell(r.*kCounts.at(column - 6), scratch);
  }
}

Cells source_header(bool with_ptr) {
  Cells h = {"source_ip"};
  if (with_ptr) h.emplace_back("ptr");
  for (const char* c : {"header_from", "disposition", "dkim", "spf", "messages", "reports"})
    h.emplace_back(c);
  return h;
}

// A source row's cell in `column` (of source_header(with_ptr)); a count is formatted into `scratch`.
std::string_view source_cell(const SourceRow& s, bool with_ptr, std::size_t column, std::string& scratch) {
  if (!with_ptr && column > 0) ++column;  // the columns as with the PTR column
  switch (column) {
    case 0:
      return s.key->source_ip;
    case 1:
      return s.ptr;
    case 2:
      return s.key->header_from;
    case 3:
      return s.key->disposition;
    case 4:
      return s.key->dkim;
    case 5:
      return s.key->spf;
    case 6:
      return number_cell(s.messages, scratch);
    default:
      return number_cell(s.reports, scratch);
  }
}

// Counts are right-aligned; the rest (report ids too, even all-digit ones) left-aligned.
bool count_column(std::string_view header) {
  return header == "messages" || header == "reports" || header.ends_with("_pass") ||
         header.ends_with("_fail");
}

void make_printable(char* first, char* last) {
  for (; first != last; ++first) {
    const auto u = static_cast<unsigned char>(*first);
    if (u < 32 || u == 127) *first = '?';
  }
}

// The cells are made as they are written, by cell(row, column, scratch), twice (once for the columns'
// widths): a table holds no copy of them (the sources of the 1 MB report were 317 KB of cells and their
// numbers' text).
template <typename Cell>
void append_table(std::string& out, std::string_view title, const Cells& header, std::size_t rows,
                  const Cell& cell) {
  const std::size_t columns = header.size();
  std::string scratch;
  std::vector<std::size_t> width(columns);
  for (std::size_t i = 0; i < columns; ++i) width[i] = header[i].size();
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < columns; ++i) width[i] = std::max(width[i], cell(r, i, scratch).size());
  std::vector<bool> right(columns);
  std::size_t line_width = 1;
  for (std::size_t i = 0; i < columns; ++i) {
    right[i] = count_column(header[i]);
    line_width += width[i] + 2;
  }
  out.reserve(out.size() + title.size() + 16 + line_width * (rows + 1));
  // Written straight into `out` (no string per line); trailing blanks are taken back off. A cell's control
  // characters become '?' where it was written, so it cannot break the terminal line.
  auto line = [&](auto&& text_of, bool is_header) {
    const std::size_t start = out.size();
    for (std::size_t i = 0; i < columns; ++i) {
      const std::string_view c = text_of(i);
      const std::size_t pad = width[i] - c.size();
      const bool align_right = !is_header && right[i];
      if (i > 0) out += "  ";
      if (align_right) out.append(pad, ' ');
      const std::size_t at = out.size();
      out += c;
      make_printable(out.data() + at, out.data() + out.size());
      if (!align_right && i + 1 < columns) out.append(pad, ' ');
    }
    while (out.size() > start && out.back() == ' ') out.pop_back();
    out += '\n';
  };
  out += title;
  out += " (";
  out += std::to_string(rows);
  out += ")\n";
  line([&](std::size_t i) { return std::string_view(header[i]); }, true);
  for (std::size_t r = 0; r < rows; ++r) line([&](std::size_t i) { return cell(r, i, scratch); }, false);
}

void append_csv_field(std::string& out, std::string_view text) {
  const bool quote = text.find_first_of(",\"\r\n") != std::string_view::npos ||
                     (!text.empty() && (text.front() == ' ' || text.back() == ' '));
  if (!quote) {
    out += text;
    return;
  }
  out += '"';
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

template <typename Cell>
void append_csv(std::string& out, const Cells& header, std::size_t rows, const Cell& cell) {
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (i > 0) out += ',';
    append_csv_field(out, header[i]);
  }
  out += "\r\n";
  std::string scratch;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < header.size(); ++i) {
      if (i > 0) out += ',';
      append_csv_field(out, cell(r, i, scratch));
    }
    out += "\r\n";
  }
}

}  // namespace

std::optional<std::int64_t> parse_day(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  int y = 0;
  unsigned m = 0;
  unsigned d = 0;
  auto num = [&](std::size_t pos, std::size_t len, auto& v) {
    const char* first = text.data() + pos;
    const auto r = std::from_chars(first, first + len, v);
    return r.ec == std::errc{} && r.ptr == first + len;
  };
  if (!num(0, 4, y) || !num(5, 2, m) || !num(8, 2, d)) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_days{ymd}.time_since_epoch() / std::chrono::seconds{1};
}

std::string format_time(std::int64_t t) {
  const std::chrono::sys_seconds tp{std::chrono::seconds{t}};
  const auto day = std::chrono::floor<std::chrono::days>(tp);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{tp - day};
  std::string out = std::to_string(static_cast<int>(ymd.year()));
  out += '-';
  out += two(static_cast<unsigned>(ymd.month()));
  out += '-';
  out += two(static_cast<unsigned>(ymd.day()));
  out += ' ';
  out += two(static_cast<unsigned>(hms.hours().count()));
  out += ':';
  out += two(static_cast<unsigned>(hms.minutes().count()));
  out += ':';
  out += two(static_cast<unsigned>(hms.seconds().count()));
  return out;
}

bool DmarcFilter::matches(const AggregateReport& report) const {
  const auto& m = report.metadata;
  if (since && m.end < *since) return false;
  if (until && m.begin > *until) return false;
  if (!domains.empty() && std::none_of(domains.begin(), domains.end(), [&](const std::string& d) {
        return iequals(d, report.policy.domain);
      }))
    return false;
  if (!reporters.empty() && std::none_of(reporters.begin(), reporters.end(), [&](const std::string& r) {
        return icontains(m.org_name, r) || icontains(m.email, r);
      }))
    return false;
  return true;
}

void MessageCounts::add(std::uint64_t n, bool dkim, bool spf) {
  messages += n;
  (dkim ? dkim_pass : dkim_fail) += n;
  (spf ? spf_pass : spf_fail) += n;
  (dkim || spf ? dmarc_pass : dmarc_fail) += n;
}

MessageCounts& MessageCounts::operator+=(const MessageCounts& o) {
  messages += o.messages;
  dmarc_pass += o.dmarc_pass;
  dmarc_fail += o.dmarc_fail;
  dkim_pass += o.dkim_pass;
  dkim_fail += o.dkim_fail;
  spf_pass += o.spf_pass;
  spf_fail += o.spf_fail;
  return *this;
}

void SourceTally::add(DmarcRecord&& r) {
  const std::uint64_t n = r.count;
  totals_.add(n, r.dkim == "pass", r.spf == "pass");
  // The record is the parser's to drop: its strings move into the key.
  auto& counts = sources_[SourceKey{std::move(r.source_ip), std::move(r.header_from),
                                    std::move(r.disposition), std::move(r.dkim), std::move(r.spf)}];
  counts.messages += n;
  ++counts.records;
}

void SourceTally::append(RecordTally&& later) noexcept {
  auto& other = static_cast<SourceTally&>(later);
  totals_ += other.totals_;
  if (sources_.empty()) {
    sources_.swap(other.sources_);
    return;
  }
  // Node by node: std::map::merge() would leave the keys both hold in `other`, uncounted.
  for (auto it = other.sources_.begin(); it != other.sources_.end();) {
    const auto next = std::next(it);
    auto node = other.sources_.extract(it);
    const auto [at, inserted, rest] = sources_.insert(std::move(node));
    if (!inserted) {
      at->second.messages += rest.mapped().messages;
      at->second.records += rest.mapped().records;
    }
    it = next;
  }
}

DmarcSummary::Added DmarcSummary::add(const AggregateReport& report) {
  SourceTally tally;
  for (const auto& r : report.records) tally.add(DmarcRecord(r));
  return add(report, std::move(tally));
}

DmarcSummary::Added DmarcSummary::add(const AggregateReport& report, SourceTally&& tally) {
  if (!filter_.matches(report)) {
    ++filtered_;
    return Added::Filtered;
  }
  const auto& m = report.metadata;
  ReportRow scratch;  // the row of a report past max_reports: counted, not kept
  ReportRow* row = &scratch;
  ReportId id{m.org_name, m.report_id, report.policy.domain, m.begin, m.end};
  if (const auto found = reports_.find(id); found != reports_.end()) {
    ++duplicates_;
    return Added::Duplicate;
  }
  if (reports_.size() < limits_.max_reports) {
    row = &reports_.emplace(std::move(id), ReportRow{}).first->second;
  } else {
    ++unlisted_reports_;
  }
  row->org_name = m.org_name;
  row->email = m.email;
  row->report_id = m.report_id;
  row->begin = m.begin;
  row->end = m.end;
  row->domain = report.policy.domain;
  row->policy = report.policy.p;
  static_cast<MessageCounts&>(*row) = tally.totals_;

  // Each key of the tally is one report's: it counts once in SourceRow::reports, however many records had it.
  // New keys are spliced in, node and all (the parser's threads made them); past the cap, their records go
  // to the "(other)" row, which also counts each report once.
  auto& from = tally.sources_;
  if (sources_.empty() && from.size() <= limits_.max_sources) {  // the first report: its tally is the start
    sources_.swap(from);
    for (auto& [key, counts] : sources_) counts.reports = 1;
    messages_ += row->messages;
    return Added::Counted;
  }
  bool folded = false;
  std::uint64_t folded_messages = 0;
  for (auto it = from.begin(); it != from.end();) {
    const auto next = std::next(it);
    // One descent per key: where it is, or where it goes (the hint for the insertion).
    const auto found = sources_.lower_bound(it->first);
    if (found != sources_.end() && !(it->first < found->first)) {
      found->second.messages += it->second.messages;
      ++found->second.reports;
    } else if (sources_.size() < limits_.max_sources) {
      auto node = from.extract(it);
      node.mapped().reports = 1;
      sources_.insert(found, std::move(node));
    } else {
      folded = true;
      folded_messages += it->second.messages;
      folded_sources_ += it->second.records;
    }
    it = next;
  }
  if (folded) {
    auto& other = sources_[SourceKey{std::string(kOtherSources), {}, {}, {}, {}}];
    other.messages += folded_messages;
    ++other.reports;
  }
  messages_ += row->messages;
  return Added::Counted;
}

std::vector<ReportRow> DmarcSummary::reports() const {
  std::vector<ReportRow> out;
  out.reserve(reports_.size());
  for (const auto& [id, row] : reports_) out.push_back(row);
  std::stable_sort(out.begin(), out.end(), [](const ReportRow& a, const ReportRow& b) {
    return std::tie(a.begin, a.org_name, a.report_id) < std::tie(b.begin, b.org_name, b.report_id);
  });
  return out;
}

std::vector<SourceRow> DmarcSummary::sources() const {
  // The entries are sorted by pointer, then listed in that order.
  using Entry = decltype(sources_)::value_type;
  std::vector<const Entry*> order;
  order.reserve(sources_.size());
  for (const auto& entry : sources_) order.push_back(&entry);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->second.messages != b->second.messages ? a->second.messages > b->second.messages
                                                    : a->first < b->first;
  });
  std::vector<SourceRow> out;
  out.reserve(order.size());
  for (const Entry* e : order) out.push_back(SourceRow{&e->first, e->second.messages, e->second.reports, {}});
  return out;
}

std::string printable(std::string_view text) {
  std::string out(text);
  make_printable(out.data(), out.data() + out.size());
  return out;
}

std::string csv_field(std::string_view text) {
  std::string out;
  append_csv_field(out, text);
  return out;
}

std::string render_dmarc_table(const std::vector<ReportRow>& reports, const std::vector<SourceRow>& sources,
                               DmarcView view, bool with_ptr) {
  const auto report = [&](std::size_t r, std::size_t c, std::string& scratch) {
    return report_cell(reports[r], c, scratch);
  };
  const auto source = [&](std::size_t r, std::size_t c, std::string& scratch) {
    return source_cell(sources[r], with_ptr, c, scratch);
  };
  std::string out;
  if (view != DmarcView::Sources) append_table(out, "Reports", report_header(), reports.size(), report);
  if (view == DmarcView::All) out += '\n';
  if (view != DmarcView::Reports)
    append_table(out, "Sources", source_header(with_ptr), sources.size(), source);
  return out;
}

std::string render_dmarc_csv(const std::vector<ReportRow>& reports, const std::vector<SourceRow>& sources,
                             DmarcView view, bool with_ptr) {
  const auto report = [&](std::size_t r, std::size_t c, std::string& scratch) {
    return report_cell(reports[r], c, scratch);
  };
  const auto source = [&](std::size_t r, std::size_t c, std::string& scratch) {
    return source_cell(sources[r], with_ptr, c, scratch);
  };
  std::string out;
  if (view != DmarcView::Sources) append_csv(out, report_header(), reports.size(), report);
  if (view == DmarcView::All) out += "\r\n";
  if (view != DmarcView::Reports) append_csv(out, source_header(with_ptr), sources.size(), source);
  return out;
}

}  // namespace chainmail
