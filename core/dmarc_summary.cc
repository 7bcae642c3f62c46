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

Cells report_header() {
  return {"org",        "report_id",  "begin",     "end",       "domain",   "policy",  "messages",
          "dmarc_pass", "dmarc_fail", "dkim_pass", "dkim_fail", "spf_pass", "spf_fail"};
}

Cells report_cells(const ReportRow& r) {
  return {r.org_name,
          r.report_id,
          format_time(r.begin),
          format_time(r.end),
          r.domain,
          r.policy,
          std::to_string(r.messages),
          std::to_string(r.dmarc_pass),
          std::to_string(r.dmarc_fail),
          std::to_string(r.dkim_pass),
          std::to_string(r.dkim_fail),
          std::to_string(r.spf_pass),
          std::to_string(r.spf_fail)};
}

Cells source_header(bool with_ptr) {
  Cells h = {"source_ip"};
  if (with_ptr) h.emplace_back("ptr");
  for (const char* c : {"header_from", "disposition", "dkim", "spf", "messages", "reports"})
    h.emplace_back(c);
  return h;
}

Cells source_cells(const SourceRow& s, bool with_ptr) {
  Cells c;
  c.reserve(8);
  c.push_back(s.key.source_ip);
  if (with_ptr) c.push_back(s.ptr);
  c.push_back(s.key.header_from);
  c.push_back(s.key.disposition);
  c.push_back(s.key.dkim);
  c.push_back(s.key.spf);
  c.push_back(std::to_string(s.messages));
  c.push_back(std::to_string(s.reports));
  return c;
}

// Counts are right-aligned; the rest (report ids too, even all-digit ones) left-aligned.
bool count_column(std::string_view header) {
  return header == "messages" || header == "reports" || header.ends_with("_pass") ||
         header.ends_with("_fail");
}

void append_table(std::string& out, std::string_view title, const Cells& header,
                  const std::vector<Cells>& rows) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  std::vector<bool> right(header.size());
  std::size_t line_width = 1;
  for (std::size_t i = 0; i < header.size(); ++i) {
    right[i] = count_column(header[i]);
    line_width += width[i] + 2;
  }
  out.reserve(out.size() + title.size() + 16 + line_width * (rows.size() + 1));
  // Written straight into `out` (no string per line); trailing blanks are taken back off.
  auto line = [&](const Cells& cells, bool is_header) {
    const std::size_t start = out.size();
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const std::size_t pad = width[i] - cells[i].size();
      const bool align_right = !is_header && right[i];
      if (i > 0) out += "  ";
      if (align_right) out.append(pad, ' ');
      out += cells[i];
      if (!align_right && i + 1 < cells.size()) out.append(pad, ' ');
    }
    while (out.size() > start && out.back() == ' ') out.pop_back();
    out += '\n';
  };
  out += title;
  out += " (";
  out += std::to_string(rows.size());
  out += ")\n";
  line(header, true);
  for (const auto& row : rows) line(row, false);
}

void append_csv(std::string& out, const Cells& header, const std::vector<Cells>& rows) {
  auto line = [&](const Cells& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) out += ',';
      out += csv_field(cells[i]);
    }
    out += "\r\n";
  };
  line(header);
  for (const auto& row : rows) line(row);
}

// In place: what printable() does, without a second copy of every cell.
void make_printable(std::string& text) {
  for (char& c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 32 || u == 127) c = '?';
  }
}

std::vector<Cells> printable_rows(std::vector<Cells> rows) {
  for (auto& row : rows)
    for (auto& cell : row) make_printable(cell);
  return rows;
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

DmarcSummary::Added DmarcSummary::add(const AggregateReport& report) {
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

  // One report may list the same key in several records; it counts once in SourceRow::reports.
  ++counted_;
  for (const auto& r : report.records) {
    row->messages += r.count;
    const bool dkim = r.dkim == "pass";
    const bool spf = r.spf == "pass";
    (dkim ? row->dkim_pass : row->dkim_fail) += r.count;
    (spf ? row->spf_pass : row->spf_fail) += r.count;
    (dkim || spf ? row->dmarc_pass : row->dmarc_fail) += r.count;
    // One hash and one lookup per record: inserted first, taken back out when past the cap.
    auto [found, inserted] =
        sources_.try_emplace(SourceKey{r.source_ip, r.header_from, r.disposition, r.dkim, r.spf});
    if (inserted && sources_.size() > limits_.max_sources) {
      sources_.erase(found);
      ++folded_sources_;
      found = sources_.try_emplace(SourceKey{std::string(kOtherSources), {}, {}, {}, {}}).first;
    }
    auto& src = found->second;
    src.messages += r.count;
    if (src.last_report != counted_) {
      src.last_report = counted_;
      ++src.reports;
    }
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
  // The entries are sorted by pointer and copied once, in order: rows are large to swap.
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
  for (const Entry* e : order) out.push_back(SourceRow{e->first, e->second.messages, e->second.reports, {}});
  return out;
}

std::string printable(std::string_view text) {
  std::string out(text);
  make_printable(out);
  return out;
}

std::string csv_field(std::string_view text) {
  const bool quote = text.find_first_of(",\"\r\n") != std::string_view::npos ||
                     (!text.empty() && (text.front() == ' ' || text.back() == ' '));
  if (!quote) return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string render_dmarc_table(const std::vector<ReportRow>& reports, const std::vector<SourceRow>& sources,
                               DmarcView view, bool with_ptr) {
  std::string out;
  if (view != DmarcView::Sources) {
    std::vector<Cells> rows;
    rows.reserve(reports.size());
    for (const auto& r : reports) rows.push_back(report_cells(r));
    append_table(out, "Reports", report_header(), printable_rows(std::move(rows)));
  }
  if (view == DmarcView::All) out += '\n';
  if (view != DmarcView::Reports) {
    std::vector<Cells> rows;
    rows.reserve(sources.size());
    for (const auto& s : sources) rows.push_back(source_cells(s, with_ptr));
    append_table(out, "Sources", source_header(with_ptr), printable_rows(std::move(rows)));
  }
  return out;
}

std::string render_dmarc_csv(const std::vector<ReportRow>& reports, const std::vector<SourceRow>& sources,
                             DmarcView view, bool with_ptr) {
  std::string out;
  if (view != DmarcView::Sources) {
    std::vector<Cells> rows;
    rows.reserve(reports.size());
    for (const auto& r : reports) rows.push_back(report_cells(r));
    append_csv(out, report_header(), rows);
  }
  if (view == DmarcView::All) out += "\r\n";
  if (view != DmarcView::Reports) {
    std::vector<Cells> rows;
    rows.reserve(sources.size());
    for (const auto& s : sources) rows.push_back(source_cells(s, with_ptr));
    append_csv(out, source_header(with_ptr), rows);
  }
  return out;
}

}  // namespace chainmail
