#include "core/route_format.h"

#include <algorithm>

namespace chainmail {
std::string sanitize(std::string_view s) {
  // Keys come from strangers (socketmap, RCPT TO): never print raw control bytes.
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4U];
      out += kHex[u & 0xfU];
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

std::string step_text(const Step& s) {
  const std::string_view letter = rule_letter(s.rule);
  std::string label = letter.empty() ? "   " : std::string(letter) + ". ";
  label += std::string(rule_name(s.rule));
  label.resize(std::max<std::size_t>(label.size(), 20), ' ');
  return label + " " + sanitize(s.subject) + (s.detail.empty() ? "" : "  (" + sanitize(s.detail) + ")");
}

}  // namespace

std::string render_text(const RouteResult& r) {
  std::string out = sanitize(r.input) + ": " + std::string(outcome_name(r.outcome));
  if (r.outcome == Outcome::routed) {
    out += r.targets.size() == 1 ? "\n" : " (" + std::to_string(r.targets.size()) + " targets)\n";
    for (const auto& t : r.targets) {
      out += "  -> " + std::string(target_kind_name(t.kind)) + " " + sanitize(t.address) + "\n";
      for (const auto& s : t.path) out += "       " + step_text(s) + "\n";
    }
  } else {
    out += ": " + sanitize(r.reason) + "\n";
  }
  for (const auto& w : r.warnings) out += "  warning: " + sanitize(w) + "\n";
  return out;
}

int route_exit_status(std::span<const RouteResult> results) {
  int status = 0;
  for (const auto& r : results) {
    if (r.outcome == Outcome::trouble) {
      status = std::max(status, r.trouble && r.trouble->kind == Trouble::Kind::configuration ? 78 : 75);
    } else if (r.outcome != Outcome::routed) {
      status = std::max(status, 1);
    }
  }
  return status;
}

std::string socketmap_reply(const RouteResult& r) {
  switch (r.outcome) {
    case Outcome::routed: {
      std::string out = "OK ";
      for (std::size_t i = 0; i < r.targets.size(); ++i) out += (i != 0 ? "," : "") + r.targets[i].address;
      return out;
    }
    case Outcome::trouble:
      return "TEMP " + sanitize(r.reason);
    default:
      // Unknown, not ours, or not an address (Postfix also asks for keys like "@domain"): not found.
      return "NOTFOUND ";
  }
}

}  // namespace chainmail
