// dmarc_report_fields.h - the element tree of DMARC aggregate reports (RFC 7489 appendix C and RFC 9990 share
// it), as tables for core/dmarc_report.cc's SAX parser: which element, under which parent, is which field,
// and whose text is read. Internal to the parser (dmarc_report_parser.h, dmarc_report.cc).
//
// Adding an element: a Field, a kChildFields line beside its parent's other children (a static_assert checks
// they stay together), and its place in kHasText when it is a container.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace chainmail::report_fields {

// The elements the parser knows, by their place in the document. Each open element's Field is found from its
// parent's and its own name (child_field()), once, when it opens: no path string is built or hashed (that was
// the parser's own largest cost on big reports).
enum class Field {
  other,  // anything else, and everything below it
  root,   // <feedback>
  version,
  report_metadata,
  org_name,
  email,
  extra_contact_info,
  report_id,
  error,
  date_range,
  begin,
  end,
  policy_published,
  domain,
  adkim,
  aspf,
  p,
  sp,
  np,
  fo,
  testing,
  discovery_method,
  pct,
  record,
  row,
  source_ip,
  count,
  policy_evaluated,
  disposition,
  eval_dkim,
  eval_spf,
  reason,
  reason_type,
  identifiers,
  header_from,
  envelope_from,
  envelope_to,
  auth_results,
  record_dkim,
  dkim_domain,
  dkim_selector,
  dkim_result,
  record_spf,
  spf_domain,
  spf_scope,
  spf_result,
};

struct ChildField {
  Field parent;
  std::string_view name;
  Field field;
};

constexpr std::array kChildFields{
    ChildField{Field::root, "version", Field::version},
    ChildField{Field::root, "report_metadata", Field::report_metadata},
    ChildField{Field::root, "policy_published", Field::policy_published},
    ChildField{Field::root, "record", Field::record},
    ChildField{Field::report_metadata, "org_name", Field::org_name},
    ChildField{Field::report_metadata, "email", Field::email},
    ChildField{Field::report_metadata, "extra_contact_info", Field::extra_contact_info},
    ChildField{Field::report_metadata, "report_id", Field::report_id},
    ChildField{Field::report_metadata, "error", Field::error},
    ChildField{Field::report_metadata, "date_range", Field::date_range},
    ChildField{Field::date_range, "begin", Field::begin},
    ChildField{Field::date_range, "end", Field::end},
    ChildField{Field::policy_published, "domain", Field::domain},
    ChildField{Field::policy_published, "adkim", Field::adkim},
    ChildField{Field::policy_published, "aspf", Field::aspf},
    ChildField{Field::policy_published, "p", Field::p},
    ChildField{Field::policy_published, "sp", Field::sp},
    ChildField{Field::policy_published, "np", Field::np},
    ChildField{Field::policy_published, "fo", Field::fo},
    ChildField{Field::policy_published, "testing", Field::testing},
    ChildField{Field::policy_published, "discovery_method", Field::discovery_method},
    ChildField{Field::policy_published, "pct", Field::pct},
    ChildField{Field::record, "row", Field::row},
    ChildField{Field::record, "identifiers", Field::identifiers},
    ChildField{Field::record, "auth_results", Field::auth_results},
    ChildField{Field::row, "source_ip", Field::source_ip},
    ChildField{Field::row, "count", Field::count},
    ChildField{Field::row, "policy_evaluated", Field::policy_evaluated},
    ChildField{Field::policy_evaluated, "disposition", Field::disposition},
    ChildField{Field::policy_evaluated, "dkim", Field::eval_dkim},
    ChildField{Field::policy_evaluated, "spf", Field::eval_spf},
    ChildField{Field::policy_evaluated, "reason", Field::reason},
    ChildField{Field::reason, "type", Field::reason_type},
    ChildField{Field::identifiers, "header_from", Field::header_from},
    ChildField{Field::identifiers, "envelope_from", Field::envelope_from},
    ChildField{Field::identifiers, "envelope_to", Field::envelope_to},
    ChildField{Field::auth_results, "dkim", Field::record_dkim},
    ChildField{Field::auth_results, "spf", Field::record_spf},
    ChildField{Field::record_dkim, "domain", Field::dkim_domain},
    ChildField{Field::record_dkim, "selector", Field::dkim_selector},
    ChildField{Field::record_dkim, "result", Field::dkim_result},
    ChildField{Field::record_spf, "domain", Field::spf_domain},
    ChildField{Field::record_spf, "scope", Field::spf_scope},
    ChildField{Field::record_spf, "result", Field::spf_result},
};

constexpr std::size_t kFields = static_cast<std::size_t>(Field::spf_result) + 1;

// Where each parent's children start and end in kChildFields (they are listed together), so that an opening
// element is compared with its few possible names only, not with all 44.
struct ChildRange {
  std::uint8_t first = 0;
  std::uint8_t last = 0;
};
constexpr std::array<ChildRange, kFields> kChildRanges = [] {
  std::array<ChildRange, kFields> ranges{};
  for (std::size_t i = 0; i < kChildFields.size(); ++i) {
    auto& r = ranges[static_cast<std::size_t>(kChildFields[i].parent)];
    if (r.first == r.last) r.first = static_cast<std::uint8_t>(i);
    r.last = static_cast<std::uint8_t>(i + 1);
  }
  return ranges;
}();
static_assert(kChildFields.size() < 256);

// The elements whose text is read: the text of every other element (containers, unknown elements) is only
// counted against max_text, never copied.
constexpr std::array<bool, kFields> kHasText = [] {
  std::array<bool, kFields> text{};
  text.fill(true);
  for (const Field f :
       {Field::other, Field::root, Field::report_metadata, Field::date_range, Field::policy_published,
        Field::record, Field::row, Field::policy_evaluated, Field::reason, Field::identifiers,
        Field::auth_results, Field::record_dkim, Field::record_spf})
    text[static_cast<std::size_t>(f)] = false;
  return text;
}();

constexpr bool grouped_by_parent() {
  for (std::size_t i = 0; i < kChildFields.size(); ++i) {
    const auto& r = kChildRanges[static_cast<std::size_t>(kChildFields[i].parent)];
    if (i < r.first || i >= r.last) return false;
  }
  for (std::size_t f = 0; f < kFields; ++f) {
    for (std::size_t i = kChildRanges[f].first; i < kChildRanges[f].last; ++i)
      if (static_cast<std::size_t>(kChildFields[i].parent) != f) return false;
  }
  return true;
}
static_assert(grouped_by_parent(), "kChildFields must list each parent's children together");

inline Field child_field(Field parent, std::string_view name) {
  const auto& range = kChildRanges[static_cast<std::size_t>(parent)];
  for (std::size_t i = range.first; i < range.last; ++i) {
    const auto& c = kChildFields[i];
    if (c.name.size() == name.size() && c.name.front() == name.front() && c.name == name) return c.field;
  }
  return Field::other;
}

}  // namespace chainmail::report_fields
