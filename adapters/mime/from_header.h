// from_header.h - the author addresses of a From: header field (RFC 5322 3.6.2), parsed with GMime.
//
// DMARC (RFC 7489 6.6.1) needs the one From domain of a message; a message with several author addresses or
// none cannot be evaluated and is refused. This parses the field value as an address list (display names,
// comments, quoted local parts, encoded words, groups) and returns every mailbox's addr-spec.
//
// SECURITY: the value is attacker text; GMime parses it without side effects. Call init_mime() once before
// threads start (GMime's global initialisation is not thread-safe).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chainmail {

void init_mime();

struct AuthorAddress {
  std::string address;  // local@domain as written (domain not lower-cased)
  std::string domain;   // the part after the last '@'; empty when the mailbox has none
};

// Every mailbox in the From: value (groups flattened). Empty when nothing parses as a mailbox.
std::vector<AuthorAddress> parse_from(std::string_view value);

}  // namespace chainmail
