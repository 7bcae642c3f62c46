// delivery.cc - see delivery.h.
#include "core/delivery.h"

#include <algorithm>

#include "core/address.h"

namespace chainmail {
namespace {

// Characters a folder name made from directory data may hold besides letters and digits. Everything with a
// meaning to a mail store or IMAP ('/', '\\', '.', '%', '*', '&', '~', '"') is absent on purpose.
constexpr std::string_view kFolderPunctuation = "-_+@=,!#$()[]{}^' ";

bool ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// The local part of `subject` without its detail; the subject itself when it is not an address (a nested
// group's DN), which the folder sanitiser then refuses.
std::string rule_name_of(const std::string& subject, std::string_view delimiters) {
  const ParseResult parsed = parse_address(subject);
  if (!parsed.address) return subject;
  return ascii_lower(split_detail(parsed.address->local, delimiters).base);
}

// Header text stays on one line and bounded.
void append_one_line(std::string& out, std::string_view text) {
  for (char c : text.substr(0, kMaxTraceOriginal)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
}

}  // namespace

std::string_view via_kind_name(ViaKind k) {
  switch (k) {
    case ViaKind::user:
      return "user";
    case ViaKind::group:
      return "group";
    case ViaKind::alias:
      return "alias";
  }
  return "user";
}

std::optional<Via> find_via(const RouteResult& route, std::string_view mailbox_user,
                            std::string_view mailbox_domain, std::string_view delimiters) {
  if (route.outcome != Outcome::routed) return std::nullopt;
  for (const Target& target : route.targets) {
    if (target.kind != TargetKind::mailbox) continue;
    const ParseResult parsed = parse_address(target.address);
    if (!parsed.address || !iequals(parsed.address->domain, mailbox_domain)) continue;
    if (!iequals(split_detail(parsed.address->local, delimiters).base, mailbox_user)) continue;
    for (const Step& step : target.path) {
      if (step.rule == Rule::group) return Via{ViaKind::group, rule_name_of(step.subject, delimiters)};
      if (step.rule == Rule::alias) return Via{ViaKind::alias, rule_name_of(step.subject, delimiters)};
    }
    return Via{};
  }
  return std::nullopt;
}

std::optional<std::string> sanitize_folder_name(std::string_view name, std::size_t max_length) {
  if (name.empty() || name.size() > max_length) return std::nullopt;
  if (name.front() == ' ' || name.back() == ' ') return std::nullopt;
  const bool ok = std::all_of(name.begin(), name.end(), [](char c) {
    return ascii_alnum(c) || kFolderPunctuation.find(c) != std::string_view::npos;
  });
  if (!ok) return std::nullopt;
  // INBOX is not a folder of its own; a group called "inbox" simply stays in INBOX.
  if (iequals(name, kInbox)) return std::nullopt;
  return std::string(name);
}

std::string folder_for(const Via& via, const Config::Lmtp& lmtp) {
  if (via.kind == ViaKind::user || lmtp.folder_template.empty()) return std::string(kInbox);
  const auto max = static_cast<std::size_t>(lmtp.max_folder_length);
  const std::optional<std::string> name = sanitize_folder_name(via.name, max);
  if (!name) return std::string(kInbox);
  std::string out;
  const std::string_view tmpl = lmtp.folder_template;
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '%' && i + 1 < tmpl.size() && tmpl[i + 1] == 'n') {
      out += *name;
      ++i;
    } else if (tmpl[i] == '%' && i + 1 < tmpl.size() && tmpl[i + 1] == '%') {
      out += '%';
      ++i;
    } else {
      out += tmpl[i];
    }
  }
  if (out.empty() || out.size() > max) return std::string(kInbox);
  return out;
}

std::string trace_value(std::string_view original, const Via& via, std::string_view mailbox_user) {
  std::string out;
  append_one_line(out, original);
  out += " -> ";
  out += via_kind_name(via.kind);
  if (via.kind != ViaKind::user) {
    out += ' ';
    append_one_line(out, via.name);
  }
  out += " -> ";
  append_one_line(out, mailbox_user);
  return out;
}

}  // namespace chainmail
