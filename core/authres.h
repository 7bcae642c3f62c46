// authres.h - building and parsing Authentication-Results header fields (RFC 8601). Pure; no I/O.
//
// The milter stamps one field with format() and removes incoming fields that claim our authserv-id (checked
// with claims_authserv_id(), which also covers fields parse() rejects) or that do not parse; the Sieve
// extension reads our field back with parse().
//
// format() lays the value out one resinfo per line, folded with a line end + TAB at 78 columns (a TAB counts
// as 8; the first line holds only the authserv-id and ';'), e.g.
//   mx.example.org;
//   	spf=pass smtp.mailfrom=alice@example.net;
//   	dmarc=fail (p=reject) header.from=example.net
// The line end is LF by default, which is what smfi_insheader wants: Postfix's cleanup splits an inserted
// header at LF into queue-file records and writes CRLF itself on the wire, so a CR sent by the milter would
// stay in the record and reach the next hop as "\r\r\n" (postfix/src/cleanup/cleanup_out.c,
// cleanup_out_header). LineEnd::crlf gives RFC 5322 wire form for text written out directly.
// Property values and reasons are written bare when they are RFC 2045 tokens or, for any property, an
// address (dot-atom "@" domain-name), "@" domain-name or a domain-name (RFC 8601 pvalue); anything else is
// a quoted-string. Comments are escaped. Control characters in values and comments become '?'; values and
// comments longer than kMaxFormattedText are cut (at a UTF-8 character boundary) so that no line can reach
// RFC 5322's 998-character limit.
//
// parse() follows the RFC 8601 ABNF exactly: CFWS (nested comments, quoted-pairs, folding with CRLF or
// bare LF) anywhere the grammar allows it, authres-version, "none", method/version, reason, properties with
// ptype.property=pvalue. Method, result, ptype and property names are returned lower case (they are
// keywords, compared case-insensitively); values are returned as written, without their quotes. Method and
// authres versions are checked and dropped. The comments that directly follow a result are returned in
// MethodResult::comment (several joined with one space); other comments are skipped. Known non-conforming
// producers (a property without "ptype.", e.g. Microsoft's "action=none") make parse() fail.
//
// SECURITY: everything here reads or writes attacker-controlled text. format() guarantees that no value or
// comment can end a line, close a comment or quoted-string early, or introduce a ';' or a resinfo of its
// own: the output parses back to exactly the results it was given (tested). parse() is bounded:
// kMaxFieldValue octets, kMaxResults resinfos, kMaxProperties properties each, kMaxCommentDepth nesting;
// beyond them it answers nullopt. It never recurses.
//
// authserv-id comparison is ASCII case-insensitive (domain names are) and happens in one place:
// same_authserv_id() / claims_authserv_id() below. parse() and authserv_id() return the id as written.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace chainmail::authres {

inline constexpr std::size_t kMaxFieldValue = 65536;
inline constexpr std::size_t kMaxResults = 256;
inline constexpr std::size_t kMaxProperties = 64;
inline constexpr std::size_t kMaxCommentDepth = 32;
inline constexpr std::size_t kMaxFormattedText = 900;
inline constexpr std::size_t kFoldColumn = 78;

struct Property {
  std::string ptype, name, value;  // e.g. {"smtp","mailfrom","a@b"}, {"header","d","example.org"}
  friend bool operator==(const Property&, const Property&) = default;
};

struct MethodResult {
  std::string method;  // "spf", "dkim", "dmarc" (lowercase keyword)
  std::string result;  // "pass", "fail", ... (lowercase keyword)
  std::string reason;  // optional, becomes reason="..."
  std::vector<Property> properties;
  std::string comment;  // optional, emitted as (comment) after the result, escaped and sanitised
  friend bool operator==(const MethodResult&, const MethodResult&) = default;
};

// True when `id` can be our authserv-id: an RFC 2045 token of at most 255 octets (a host name is one).
bool valid_authserv_id(std::string_view id);

enum class LineEnd { lf, crlf };

// The header field VALUE (without "Authentication-Results:" and without a leading space), folded at <= 78
// columns with a line end + tab, one resinfo per line; with the default LF it is ready for smfi_insheader.
// No results gives "authserv-id; none".
// Preconditions (std::invalid_argument otherwise; they are programming errors, never attacker text):
// authserv_id satisfies valid_authserv_id() (the configuration check validates it), and method, result,
// ptype and property names are RFC 8601 Keywords (letters, digits, '-'; not ending in '-').
std::string format(std::string_view authserv_id, std::span<const MethodResult> results,
                   LineEnd line_end = LineEnd::lf);

struct Parsed {
  std::string authserv_id;            // as written, unquoted
  std::vector<MethodResult> results;  // empty for "; none"
};

// Full RFC 8601 parse of a field value (CFWS, comments, quoted strings, version after authserv-id, "none",
// properties with ptype.property=value, reason). nullopt when it does not parse. A final CRLF is allowed.
std::optional<Parsed> parse(std::string_view value);

// Just the authserv-id (cheap: it reads no further), unquoted, as written; nullopt when the value does not
// even start with a valid one (a token or quoted-string after optional CFWS, followed by CFWS, ';' or end).
std::optional<std::string> authserv_id(std::string_view value);

// authserv-ids compare ASCII case-insensitively.
bool same_authserv_id(std::string_view a, std::string_view b);

// True when the field value's authserv-id is `ours` (case-insensitively), whether or not the rest parses.
// The milter removes such fields (RFC 8601 section 5): they are forgeries or stale copies of our own.
bool claims_authserv_id(std::string_view value, std::string_view ours);

}  // namespace chainmail::authres
