// ldap_escape.h - escaping values before they enter LDAP filters (RFC 4515) and DNs (RFC 4514).
//
// SECURITY: every value that reaches a filter or a DN passes through these; addresses come from strangers.
// expand_filter() substitutes %s (whole address), %u (local part), %d (domain) and %% in a configured filter
// template, escaping each value.
#pragma once

#include <string>
#include <string_view>

namespace chainmail {

std::string escape_filter_value(std::string_view value);
std::string escape_dn_value(std::string_view value);

std::string expand_filter(std::string_view tmpl, std::string_view address);

}  // namespace chainmail
