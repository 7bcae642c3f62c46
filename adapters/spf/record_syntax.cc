// record_syntax.cc - see record_syntax.h. Grammar references are to RFC 7208 section 12.
#include "adapters/spf/record_syntax.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <optional>
#include <vector>

namespace chainmail::spf {
namespace {

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
  return is_alpha(c) || is_digit(c);
}
char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// macro-expand = ( "%{" macro-letter transformers *delimiter "}" ) / "%%" / "%_" / "%-"
// Starts at the '%'; returns the length consumed, or 0 if invalid. c, r and t only in explanations (7.3).
std::size_t macro_expand(std::string_view s, std::size_t i, bool explanation) {
  if (i + 1 >= s.size()) return 0;
  const char next = s[i + 1];
  if (next == '%' || next == '_' || next == '-') return 2;
  if (next != '{') return 0;
  std::size_t j = i + 2;
  if (j >= s.size()) return 0;
  const std::string_view letters = explanation ? "slodiphcrtv" : "slodiphv";
  if (letters.find(lower(s[j])) == std::string_view::npos) return 0;
  ++j;
  // transformers = *DIGIT [ "r" ]; a number of parts, when given, must not be zero.
  const std::size_t digits_start = j;
  unsigned long parts = 0;
  while (j < s.size() && is_digit(s[j])) {
    parts = parts * 10 + static_cast<unsigned long>(s[j] - '0');
    if (parts > 1000000) return 0;
    ++j;
  }
  if (j > digits_start && parts == 0) return 0;
  if (j < s.size() && lower(s[j]) == 'r') ++j;
  // delimiter = "." / "-" / "+" / "," / "/" / "_" / "="
  while (j < s.size() && std::string_view(".-+,/_=").find(s[j]) != std::string_view::npos) ++j;
  if (j >= s.size() || s[j] != '}') return 0;
  return j + 1 - i;
}

// macro-string = *( macro-expand / macro-literal ), macro-literal = %x21-24 / %x26-7E.
// Sets ends_with_macro when the last item is a macro-expand (a valid domain-end).
bool macro_string(std::string_view s, bool explanation, bool* ends_with_macro = nullptr) {
  bool last_macro = false;
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '%') {
      const std::size_t n = macro_expand(s, i, explanation);
      if (n == 0) return false;
      i += n;
      last_macro = true;
      continue;
    }
    if (c < 0x21 || c > 0x7e) return false;
    last_macro = false;
    ++i;
  }
  if (ends_with_macro != nullptr) *ends_with_macro = last_macro;
  return true;
}

// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
bool toplabel(std::string_view s) {
  if (s.empty() || !is_alnum(s.front()) || !is_alnum(s.back())) return false;
  bool alpha = false;
  bool dash = false;
  for (const char c : s) {
    if (c == '-') {
      dash = true;
    } else if (is_alpha(c)) {
      alpha = true;
    } else if (!is_digit(c)) {
      return false;
    }
  }
  return alpha || dash;
}

// domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand
bool domain_spec(std::string_view s) {
  bool ends_with_macro = false;
  if (s.empty() || !macro_string(s, false, &ends_with_macro)) return false;
  if (ends_with_macro) return true;
  if (s.back() == '.') s.remove_suffix(1);
  const auto dot = s.rfind('.');
  if (dot == std::string_view::npos) return false;
  return toplabel(s.substr(dot + 1));
}

// name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
bool modifier_name(std::string_view s) {
  if (s.empty() || !is_alpha(s.front())) return false;
  for (const char c : s) {
    if (!is_alnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT), ip6-cidr-length = "/" ("0" / %x31-39 0*2DIGIT); digits
// only.
std::optional<int> cidr_value(std::string_view digits, int max) {
  if (digits.empty() || digits.size() > 3) return std::nullopt;
  if (digits.size() > 1 && digits.front() == '0') return std::nullopt;
  int value = 0;
  for (const char c : digits) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value > max) return std::nullopt;
  return value;
}

// ip4-network = qnum "." qnum "." qnum "." qnum, qnum = 0-255 without leading zeros.
bool ip4_network(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    const std::size_t start = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    const auto q = cidr_value(s.substr(start, i - start), 255);
    if (!q) return false;
    ++parts;
    if (i == s.size()) break;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
  return parts == 4;
}

bool ip6_network(std::string_view s) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return false;
  const std::string text(s);
  in6_addr addr{};
  return inet_pton(AF_INET6, text.c_str(), &addr) == 1;
}

// Splits "rest" of an a/mx term into [":" domain-spec] and dual-cidr-length = [ ip4-cidr ] [ "/" ip6-cidr ].
// The CIDR part is taken from the end: a valid domain-spec never ends in "/" DIGITs.
struct DualCidr {
  std::string_view domain;    // without the ':'; empty if absent
  std::string_view ip4, ip6;  // digits; empty if absent
};

std::optional<DualCidr> split_dual_cidr(std::string_view rest) {
  DualCidr out;
  auto trailing_digits = [](std::string_view s) {
    std::size_t n = 0;
    while (n < s.size() && is_digit(s[s.size() - 1 - n])) ++n;
    return n;
  };
  std::size_t n = trailing_digits(rest);
  if (n > 0 && rest.size() >= n + 2 && rest[rest.size() - n - 1] == '/' && rest[rest.size() - n - 2] == '/') {
    out.ip6 = rest.substr(rest.size() - n);
    rest.remove_suffix(n + 2);
  }
  n = trailing_digits(rest);
  if (n > 0 && rest.size() >= n + 1 && rest[rest.size() - n - 1] == '/') {
    out.ip4 = rest.substr(rest.size() - n);
    rest.remove_suffix(n + 1);
  }
  if (rest.empty()) return out;
  if (rest.front() != ':') return std::nullopt;
  out.domain = rest.substr(1);
  if (!domain_spec(out.domain)) return std::nullopt;
  return out;
}

std::string quote(std::string_view term) {
  std::string s = "'";
  s.append(term.substr(0, 100));
  s += '\'';
  return s;
}

}  // namespace

bool is_spf_record(std::string_view txt) {
  return txt.size() >= 6 && iequals(txt.substr(0, 6), "v=spf1") && (txt.size() == 6 || txt[6] == ' ');
}

bool valid_explanation(std::string_view text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  // explain-string = *( macro-string / SP )
  std::size_t i = 0;
  while (i < text.size()) {
    const auto space = text.find(' ', i);
    const auto piece = text.substr(i, space == std::string_view::npos ? std::string_view::npos : space - i);
    if (!macro_string(piece, true)) return false;
    if (space == std::string_view::npos) break;
    i = space + 1;
  }
  return true;
}

std::string expand_explanation(std::string_view text, const MacroValues& values, std::size_t max_size) {
  std::string out;
  std::string p;  // %{p}, looked up once
  bool have_p = false;
  for (std::size_t i = 0; i < text.size() && out.size() < max_size;) {
    const char c = text[i];
    if (c != '%') {
      out += c;
      ++i;
      continue;
    }
    const std::size_t n = macro_expand(text, i, true);
    if (n == 0) return out;  // valid_explanation() rules this out
    const std::string_view macro = text.substr(i, n);
    i += n;
    if (macro == "%%") {
      out += '%';
      continue;
    }
    if (macro == "%_") {
      out += ' ';
      continue;
    }
    if (macro == "%-") {
      out += "%20";
      continue;
    }
    // %{ letter [digits] [r] delimiters }
    const char letter = macro[2];
    const std::string* value = nullptr;
    switch (lower(letter)) {
      case 's':
        value = &values.sender;
        break;
      case 'l':
        value = &values.local_part;
        break;
      case 'o':
        value = &values.sender_domain;
        break;
      case 'd':
        value = &values.domain;
        break;
      case 'i':
        value = &values.ip;
        break;
      case 'c':
        value = &values.ip_pretty;
        break;
      case 'v':
        value = &values.ip_version;
        break;
      case 'h':
        value = &values.helo;
        break;
      case 'r':
        value = &values.receiver;
        break;
      case 't':
        value = &values.time;
        break;
      case 'p':
        if (!have_p) {
          p = values.validated_name ? values.validated_name() : "unknown";
          have_p = true;
        }
        value = &p;
        break;
      default:
        return out;
    }
    std::size_t j = 3;
    std::size_t keep = 0;
    while (is_digit(macro[j])) keep = keep * 10 + static_cast<std::size_t>(macro[j++] - '0');
    bool reverse = false;
    if (lower(macro[j]) == 'r') {
      reverse = true;
      ++j;
    }
    std::string_view delimiters = macro.substr(j, macro.size() - 1 - j);
    if (delimiters.empty()) delimiters = ".";
    // Split into parts, reverse, keep the right-most `keep` parts, join with '.' (7.3).
    std::vector<std::string_view> parts;
    std::string_view v(*value);
    while (true) {
      const auto at = v.find_first_of(delimiters);
      parts.push_back(v.substr(0, at));
      if (at == std::string_view::npos) break;
      v.remove_prefix(at + 1);
    }
    if (reverse) std::reverse(parts.begin(), parts.end());
    if (keep > 0 && keep < parts.size())
      parts.erase(parts.begin(), parts.end() - static_cast<std::ptrdiff_t>(keep));
    std::string expanded;
    for (std::size_t k = 0; k < parts.size(); ++k) {
      if (k > 0) expanded += '.';
      expanded += parts[k];
    }
    if (letter >= 'A' && letter <= 'Z') {
      static constexpr char kHex[] = "0123456789ABCDEF";
      for (const char ch : expanded) {
        if (is_alnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
          out += ch;
        } else {
          const auto u = static_cast<unsigned char>(ch);
          out += '%';
          out += kHex[u >> 4];
          out += kHex[u & 0xf];
        }
      }
    } else {
      out += expanded;
    }
  }
  if (out.size() > max_size) out.resize(max_size);
  return out;
}

RecordCheck check_record(std::string_view record, bool client_is_ipv6) {
  RecordCheck out;
  for (const char c : record) {
    if (c < 0x20 || c > 0x7e) {
      out.error = "record holds a control or non-ASCII character";
      return out;
    }
  }
  if (!is_spf_record(record)) {
    out.error = "not a v=spf1 record";
    return out;
  }
  // What libspf2 gets: the mechanisms in order (some rewritten), then exp=, then redirect= unless an "all"
  // makes it moot (6.1). libspf2 would run redirect= where it stands, and it refuses some valid unknown
  // modifiers, which have no effect anyway (6), so those are left out.
  std::vector<std::string> mechanisms;
  std::string exp_term;
  std::string redirect_term;
  bool has_all = false;
  int redirects = 0;
  int exps = 0;

  std::string_view rest = record.substr(6);
  while (!rest.empty()) {
    const auto start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const auto end = rest.find(' ');
    const std::string_view term = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);

    std::string_view body = term;
    std::string_view qualifier;
    if (std::string_view("+-?~").find(body.front()) != std::string_view::npos) {
      qualifier = body.substr(0, 1);
      body.remove_prefix(1);
    }
    const auto sep = body.find_first_of("=:/");
    if (sep != std::string_view::npos && body[sep] == '=') {
      // modifier = redirect / explanation / unknown-modifier
      const std::string_view name = body.substr(0, sep);
      const std::string_view value = body.substr(sep + 1);
      if (!qualifier.empty() || !modifier_name(name)) {
        out.error = "invalid modifier " + quote(term);
        return out;
      }
      if (iequals(name, "redirect") || iequals(name, "exp")) {
        if (!domain_spec(value)) {
          out.error = "invalid domain in " + quote(term);
          return out;
        }
        if (iequals(name, "redirect")) {
          ++redirects;
          redirect_term = term;
        } else {
          ++exps;
          exp_term = term;
        }
      } else if (!macro_string(value, true)) {
        out.error = "invalid macro in " + quote(term);
        return out;
      }
      continue;
    }

    const std::string_view name = body.substr(0, sep);
    std::string_view args = sep == std::string_view::npos ? std::string_view() : body.substr(sep);
    auto bad = [&](std::string_view what) {
      out.error = std::string(what);
      out.error += ' ';
      out.error += quote(term);
      return out;
    };
    mechanisms.emplace_back(term);
    if (iequals(name, "all")) {
      if (!args.empty()) return bad("invalid");
      has_all = true;
    } else if (iequals(name, "include") || iequals(name, "exists")) {
      if (args.empty() || args.front() != ':' || !domain_spec(args.substr(1)))
        return bad("invalid domain in");
    } else if (iequals(name, "ptr")) {
      if (!args.empty() && (args.front() != ':' || !domain_spec(args.substr(1))))
        return bad("invalid domain in");
    } else if (iequals(name, "ip4") || iequals(name, "ip6")) {
      const bool six = iequals(name, "ip6");
      if (args.empty() || args.front() != ':') return bad("missing address in");
      args.remove_prefix(1);
      const auto slash = args.find('/');
      const std::string_view net = args.substr(0, slash);
      if (!(six ? ip6_network(net) : ip4_network(net))) return bad("invalid address in");
      if (slash != std::string_view::npos) {
        const auto len = cidr_value(args.substr(slash + 1), six ? 128 : 32);
        if (!len) return bad("invalid CIDR length in");
        if (*len == 0) {
          const std::string q(qualifier);
          mechanisms.back() =
              six ? q + "ip6:::/1 " + q + "ip6:8000::/1" : q + "ip4:0.0.0.0/1 " + q + "ip4:128.0.0.0/1";
        }
      }
    } else if (iequals(name, "a") || iequals(name, "mx")) {
      const auto parts = split_dual_cidr(args);
      if (!parts) return bad("invalid domain or CIDR length in");
      std::optional<int> ip4;
      std::optional<int> ip6;
      if (!parts->ip4.empty() && !(ip4 = cidr_value(parts->ip4, 32)))
        return bad("invalid IPv4 CIDR length in");
      if (!parts->ip6.empty() && !(ip6 = cidr_value(parts->ip6, 128)))
        return bad("invalid IPv6 CIDR length in");
      if (ip4 == 0 || ip6 == 0) {
        // Only the client's family matters; libspf2 cannot hold a 0 length, so say it another way.
        const std::optional<int> mine = client_is_ipv6 ? ip6 : ip4;
        const std::string_view mine_digits = client_is_ipv6 ? parts->ip6 : parts->ip4;
        std::string r(qualifier);
        r += name;
        if (mine == 0) {
          std::string_view domain = parts->domain.empty() ? std::string_view("%{d}") : parts->domain;
          if (domain.back() == '.') domain.remove_suffix(1);
          r += ':';
          r += domain;
          r += kAnyAddressSuffix;
        } else {
          if (!parts->domain.empty()) {
            r += ':';
            r += parts->domain;
          }
          if (mine) {
            r += client_is_ipv6 ? "//" : "/";
            r += mine_digits;
          }
        }
        mechanisms.back() = std::move(r);
      }
    } else {
      return bad("unknown mechanism");
    }
  }
  if (redirects > 1) {
    out.error = "more than one redirect= modifier";
    return out;
  }
  if (exps > 1) {
    out.error = "more than one exp= modifier";
    return out;
  }
  out.ok = true;
  out.for_libspf2 = "v=spf1";
  for (const auto& m : mechanisms) {
    out.for_libspf2 += ' ';
    out.for_libspf2 += m;
  }
  if (!exp_term.empty()) {
    out.for_libspf2 += ' ';
    out.for_libspf2 += exp_term;
  }
  if (!redirect_term.empty() && !has_all) {
    out.for_libspf2 += ' ';
    out.for_libspf2 += redirect_term;
  }
  return out;
}

}  // namespace chainmail::spf
