#include "address.h"

#include <algorithm>

namespace chainmail {
namespace {

// RFC 5322 atext.
// ASCII only, and no locale: these run for every address of every group member.
bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_atext(char c) {
  if (is_alnum(c)) return true;
  constexpr std::string_view specials = "!#$%&'*+-/=?^_`{|}~";
  return specials.find(c) != std::string_view::npos;
}

// RFC 5321 qtextSMTP and the character allowed after a backslash (quoted-pairSMTP).
bool is_qtext(unsigned char c) {
  return c == 32 || c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126);
}
bool is_quotable(unsigned char c) {
  return c >= 32 && c <= 126;
}

bool valid_label(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; });
}

bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > kMaxDomain) return false;
  if (d.front() == '[') {
    // Address literal: accepted syntactically, never hosted. Only printable dtext inside the brackets.
    if (d.size() < 3 || d.back() != ']') return false;
    return std::all_of(d.begin() + 1, d.end() - 1, [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u >= 33 && u <= 126 && c != '[' && c != ']' && c != '\\';
    });
  }
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = d.find('.', start);
    if (!valid_label(d.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start)))
      return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool is_dot_atom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (s[i + 1] == '.') return false;
    } else if (!is_atext(s[i])) {
      return false;
    }
  }
  return true;
}

std::string Address::str() const {
  if (is_dot_atom(local)) return local + "@" + domain;
  std::string q = "\"";
  for (char c : local) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"@" + domain;
}

ParseResult parse_address(std::string_view text) {
  auto fail = [](std::string why) { return ParseResult{std::nullopt, std::move(why)}; };
  if (text.size() > kMaxAddress) return fail("address longer than 320 octets");
  if (text.size() >= 2 && text.front() == '<' && text.back() == '>') text = text.substr(1, text.size() - 2);
  if (text.empty()) return fail("empty address");

  std::string local;
  std::size_t at = 0;
  if (text.front() == '"') {
    std::size_t i = 1;
    bool closed = false;
    for (; i < text.size(); ++i) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c == '"') {
        closed = true;
        break;
      }
      if (c == '\\') {
        if (i + 1 >= text.size() || !is_quotable(static_cast<unsigned char>(text[i + 1])))
          return fail("bad quoted-pair in local part");
        local += text[++i];
      } else if (is_qtext(c)) {
        local += static_cast<char>(c);
      } else {
        return fail("invalid character in quoted local part");
      }
    }
    if (!closed) return fail("unterminated quoted local part");
    at = i + 1;
    if (at >= text.size() || text[at] != '@') return fail("missing @ after quoted local part");
  } else {
    at = text.rfind('@');
    if (at == std::string_view::npos) return fail("missing @domain");
    local = std::string(text.substr(0, at));
    if (!is_dot_atom(local)) return fail("local part is not a dot-atom or quoted string");
  }
  if (local.empty()) return fail("empty local part");
  if (local.size() > kMaxLocalPart) return fail("local part longer than 64 octets");
  const std::string_view domain = text.substr(at + 1);
  if (!valid_domain(domain)) return fail("invalid domain");
  return ParseResult{Address{std::move(local), ascii_lower(domain)}, {}};
}

LocalPart split_detail(std::string_view local, std::string_view delimiters) {
  if (delimiters.empty()) return {std::string(local), {}};
  const std::size_t pos = local.find_first_of(delimiters);
  if (pos == std::string_view::npos || pos == 0) return {std::string(local), {}};
  return {std::string(local.substr(0, pos)), std::string(local.substr(pos))};
}

}  // namespace chainmail
