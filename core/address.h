// address.h - RFC 5321 mailbox addresses as the router sees them.
//
// parse_address() accepts Local-part "@" Domain where Local-part is a dot-atom or a quoted-string and Domain
// is a hostname (letters, digits, hyphens, dots) or an address literal. Limits: local part 64 octets, domain
// 255, whole address 320. Nothing else is accepted: no comments, no source routes, no NUL or control bytes.
//
// SECURITY: the input is attacker-controlled (RCPT TO, socketmap keys). Everything is bounded and validated
// before it reaches a directory filter or a log line.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace chainmail {

inline constexpr std::size_t kMaxLocalPart = 64;
inline constexpr std::size_t kMaxDomain = 255;
inline constexpr std::size_t kMaxAddress = 320;

struct Address {
  std::string local;   // as written, without quotes (a quoted local part is stored unquoted)
  std::string domain;  // lower case; domains compare case-insensitively

  std::string str() const;  // local@domain, re-quoting the local part when it is not a dot-atom
  friend bool operator==(const Address&, const Address&) = default;
};

struct ParseResult {
  std::optional<Address> address;
  std::string error;  // set when address is empty
};

ParseResult parse_address(std::string_view text);

// The local part split at the first recipient delimiter: "dmarc+reports" -> {"dmarc", "+reports"}. As with
// Postfix's recipient_delimiter, every character of `delimiters` is a delimiter, and the detail keeps the one
// that was used so that it can be appended unchanged. A local part starting with a delimiter has no detail.
struct LocalPart {
  std::string base;
  std::string detail;  // empty, or the delimiter followed by the extension
};
LocalPart split_detail(std::string_view local, std::string_view delimiters);

std::string ascii_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool is_dot_atom(std::string_view s);

}  // namespace chainmail
