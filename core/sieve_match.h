// sieve_match.h - what the Sieve extension vnd.chainmail (sieve-ext/) decides, in pure C++; no I/O.
//
// authres_results(): the `authres` test. Of the message's Authentication-Results fields (topmost first),
// only the topmost one whose authserv-id is ours counts; every other field is ignored, whatever it claims:
// a field below ours was there before our MX stamped the message (a forgery or another hop's opinion), a
// field with another authserv-id is not ours to trust. The result keywords of the asked method in that field
// are returned in field order (several "dkim=" resinfos give several results: the test matches when any of
// them does). A field of ours that does not parse yields nothing: it is never replaced by a lower one.
//
// route_names(): the `route` test. Given how the original recipient (ORCPT) routes (router.h,
// Explain::yes) and the mailbox being delivered to, the names of every group and/or alias on the path that
// reaches this mailbox, outermost first: mail to postmaster@ -> alias postmaster -> group devops -> alice
// gives {"postmaster", "devops"} (core/delivery's find_via(), which picks the folder, takes only the
// outermost). A nested group, recorded by its DN, is named by the value of its first RDN.
//
// SECURITY: header values are attacker text; they go through authres::parse(), which is bounded
// (authres.h). At most kMaxAuthresFields fields are looked at. ORCPT is envelope data; it only selects among
// routes the directory and configuration define.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "router.h"

namespace chainmail::sieve {

enum class AuthMethod { spf, dkim, dmarc };
std::string_view auth_method_name(AuthMethod m);  // "spf", "dkim", "dmarc"

// A message with more Authentication-Results fields than this above ours is treated as having none of ours
// (the milter strips fields that claim our id and adds one on top, so ours is the first in practice).
inline constexpr std::size_t kMaxAuthresFields = 100;

struct AuthresResults {
  enum class Field { none, unparsable, ours };
  Field field = Field::none;         // what the topmost field with our authserv-id was
  std::vector<std::string> results;  // lower-case result keywords of the method ("pass", "fail", ...)
};

// `values`: the Authentication-Results field values, topmost first. `authserv_id`: ours (our_authserv_id()).
AuthresResults authres_results(std::span<const std::string_view> values, std::string_view authserv_id,
                               AuthMethod method);

// The authserv-id the milter stamps: milter.authserv_id, or domains.main when that is empty.
std::string our_authserv_id(const Config& config);

enum class RouteKind { any, group, alias };

// The group and/or alias names (lower case, without detail) on the path of `route` that reaches
// `mailbox_user`@`mailbox_domain`, outermost first, without repeats. Empty when the route does not reach
// this mailbox or reached it directly. `delimiters` is routing.recipient_delimiter.
std::vector<std::string> route_names(const RouteResult& route, std::string_view mailbox_user,
                                     std::string_view mailbox_domain, std::string_view delimiters,
                                     RouteKind kind);

}  // namespace chainmail::sieve
