// record_syntax.h - RFC 7208 record selection, syntax and explanation macros (4.5, 4.6, 6.2, 7, 12).
//
// libspf2's compiler is lenient where the RFC says permerror (a '%' followed by any character, CIDR lengths
// with leading zeros, c/r/t macros outside explanations, ...) and strict where the RFC is not (it cannot
// represent a CIDR length of 0). check_record() decides validity by the RFC's ABNF alone, and hands libspf2 a
// record it can represent: terms with a /0 length are rewritten into terms that match exactly the same
// clients.
//
//   ip4:N/0 -> ip4:0.0.0.0/1 ip4:128.0.0.0/1        ip6:N/0 -> ip6:::/1 ip6:8000::/1
//   a:D/0 (IPv4 client) or a:D//0 (IPv6 client)     -> a:D<kAnyAddressSuffix>   ("D has any address")
//   mx:D/0 / mx:D//0 likewise; a CIDR length for the other address family is dropped (it cannot matter).
//
// The SPF checker's DNS layer recognises kAnyAddressSuffix: it looks up D itself and, when D has an address
// of the client's family, answers with the client's own address, which is what "/0" means. A record
// publishing that suffix literally gains nothing it could not get with /0.
//
// Explanations are expanded here too (expand_explanation): libspf2's macro compiler cannot parse explanation
// text with spaces in it, and escapes with lower-case hex and RFC 2396 rules.
//
// Pure functions, no I/O (the %{p} value is supplied by the caller).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace chainmail::spf {

// RFC 6761 reserves .invalid: no real name can end this way.
inline constexpr std::string_view kAnyAddressSuffix = ".cidr0.chainmail.invalid";

// 4.5: a TXT string is an SPF record when it is "v=spf1" (any case) alone or followed by a space.
bool is_spf_record(std::string_view txt);

struct RecordCheck {
  bool ok = false;
  std::string error;  // when !ok: what is wrong, for the log (may quote the offending term)
  std::string
      for_libspf2;  // when ok: the record libspf2 should compile (the input unless a term was rewritten)
};

// Checks a selected record (is_spf_record() is true) for a client of the given family.
RecordCheck check_record(std::string_view record, bool client_is_ipv6);

// 6.2: explanation text (after the exp= TXT lookup): printable ASCII, spaces and valid macros, c/r/t allowed.
bool valid_explanation(std::string_view text);

// What the macro letters stand for (7.2, 7.3) when an explanation is expanded.
struct MacroValues {
  std::string sender;                           // s
  std::string local_part;                       // l
  std::string sender_domain;                    // o
  std::string domain;                           // d: the current domain
  std::string ip;                               // i: dotted quad, or dotted nibbles for IPv6
  std::string ip_pretty;                        // c
  std::string ip_version;                       // v: "in-addr" or "ip6"
  std::string helo;                             // h
  std::string receiver;                         // r
  std::string time;                             // t
  std::function<std::string()> validated_name;  // p: computed only if used (it needs DNS)
};

// Expands explanation text that valid_explanation() accepted (7.3, 7.4): transformers, delimiters, URL
// escaping of upper-case letters (RFC 3986 unreserved characters kept, upper-case hex). Stops at max_size.
std::string expand_explanation(std::string_view text, const MacroValues& values, std::size_t max_size);

}  // namespace chainmail::spf
