// record.cc - see record.h.
#include "adapters/dmarc/record.h"

#include <algorithm>

#include "core/address.h"

namespace chainmail::dmarc {
namespace {

bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<Policy> policy_word(std::string_view v) {
  if (iequals(v, "none")) return Policy::none;
  if (iequals(v, "quarantine")) return Policy::quarantine;
  if (iequals(v, "reject")) return Policy::reject;
  return std::nullopt;
}

// dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]: we only need to know that a URI with a scheme
// and something after it is there (RFC 3986 scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
bool valid_uri(std::string_view u) {
  u = trim(u);
  if (const auto bang = u.find('!'); bang != std::string_view::npos) u = u.substr(0, bang);
  const auto colon = u.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= u.size()) return false;
  const auto scheme = u.substr(0, colon);
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(scheme.front())) return false;
  return std::all_of(scheme.begin(), scheme.end(), [&](char c) {
    return alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
  });
}

bool any_valid_uri(std::string_view list) {
  while (true) {
    const auto comma = list.find(',');
    if (valid_uri(list.substr(0, comma))) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

std::optional<int> percent(std::string_view v) {
  if (v.empty() || v.size() > 3) return std::nullopt;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n > 100) return std::nullopt;
  return n;
}

std::optional<bool> strictness(std::string_view v) {
  if (iequals(v, "s")) return true;
  if (iequals(v, "r")) return false;
  return std::nullopt;
}

}  // namespace

bool is_dmarc_record(std::string_view txt) {
  auto s = trim(txt);
  if (s.empty() || (s.front() != 'v' && s.front() != 'V')) return false;
  s = trim(s.substr(1));
  if (s.empty() || s.front() != '=') return false;
  s = trim(s.substr(1));
  if (s.size() < 6 || !iequals(s.substr(0, 6), "DMARC1")) return false;
  s = trim(s.substr(6));
  return s.empty() || s.front() == ';';
}

RecordParse parse_record(std::string_view txt) {
  RecordParse out;
  if (txt.size() > kMaxRecord) {
    out.error = "record too long";
    return out;
  }
  if (!is_dmarc_record(txt)) {
    out.error = "not a v=DMARC1 record";
    return out;
  }
  std::optional<std::string_view> p, sp, adkim, aspf, pct, rua;
  bool first = true;
  while (true) {
    const auto semi = txt.find(';');
    const auto part = trim(txt.substr(0, semi));
    if (first) {
      first = false;  // the version tag, checked above
    } else if (const auto eq = part.find('='); eq != std::string_view::npos) {
      const auto name = trim(part.substr(0, eq));
      const auto value = trim(part.substr(eq + 1));
      auto set = [&](std::optional<std::string_view>& slot) {
        if (!slot) slot = value;
      };
      if (iequals(name, "p")) {
        set(p);
      } else if (iequals(name, "sp")) {
        set(sp);
      } else if (iequals(name, "adkim")) {
        set(adkim);
      } else if (iequals(name, "aspf")) {
        set(aspf);
      } else if (iequals(name, "pct")) {
        set(pct);
      } else if (iequals(name, "rua")) {
        set(rua);
      }
    }
    if (semi == std::string_view::npos) break;
    txt.remove_prefix(semi + 1);
  }

  Record r;
  const auto p_policy = p ? policy_word(*p) : std::nullopt;
  const auto sp_policy = sp ? policy_word(*sp) : std::nullopt;
  const bool p_bad = !p_policy;
  const bool sp_bad = sp && !sp_policy;
  if (p_bad || sp_bad) {
    if (!rua || !any_valid_uri(*rua)) {
      out.error = !p ? "no p= tag" : p_bad ? "invalid p= value" : "invalid sp= value";
      return out;
    }
    r.p = Policy::none;
    r.sp = Policy::none;
    r.p_replaced = true;
  } else {
    r.p = *p_policy;
    r.sp = sp_policy;
  }
  if (adkim) r.adkim_strict = strictness(*adkim).value_or(false);
  if (aspf) r.aspf_strict = strictness(*aspf).value_or(false);
  if (pct) r.pct = percent(*pct).value_or(100);
  out.record = r;
  return out;
}

std::string Record::canonical() const {
  std::string s = "v=DMARC1; p=";
  s += to_string(p);
  if (sp) {
    s += "; sp=";
    s += to_string(*sp);
  }
  s += adkim_strict ? "; adkim=s" : "; adkim=r";
  s += aspf_strict ? "; aspf=s" : "; aspf=r";
  s += "; pct=";
  s += std::to_string(pct);
  return s;
}

}  // namespace chainmail::dmarc
