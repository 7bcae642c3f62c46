#include "ldap_escape.h"

#include <array>

#include "percent_template.h"

namespace chainmail {
namespace {

constexpr std::array<char, 16> kHex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                       '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};

void append_hex(std::string& out, unsigned char c) {
  out += '\\';
  out += kHex[c >> 4U];
  out += kHex[c & 0x0fU];
}

}  // namespace

std::string escape_filter_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    // RFC 4515 section 3: '*', '(', ')', '\' and NUL must be escaped; bytes outside printable ASCII are
    // escaped too, so a filter never carries raw control characters or invalid UTF-8 to the server.
    if (c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c >= 0x7f) {
      append_hex(out, c);
    } else {
      out += ch;
    }
  }
  return out;
}

std::string escape_dn_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char ch = value[i];
    const auto c = static_cast<unsigned char>(ch);
    const bool edge_space = ch == ' ' && (i == 0 || i + 1 == value.size());
    const bool leading_hash = ch == '#' && i == 0;
    // RFC 4514 section 2.4.
    if (c < 0x20 || c == 0x7f) {
      append_hex(out, c);
    } else if (edge_space || leading_hash || ch == '"' || ch == '+' || ch == ',' || ch == ';' || ch == '<' ||
               ch == '>' || ch == '\\' || ch == '=') {
      out += '\\';
      out += ch;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string expand_filter(std::string_view tmpl, std::string_view address) {
  const std::size_t at = address.rfind('@');
  const std::string_view local = at == std::string_view::npos ? address : address.substr(0, at);
  const std::string_view domain = at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
  return expand_percent(tmpl, [&](char name) -> std::optional<std::string> {
    if (name == 's') return escape_filter_value(address);
    if (name == 'u') return escape_filter_value(local);
    if (name == 'd') return escape_filter_value(domain);
    return std::nullopt;
  });
}

}  // namespace chainmail
