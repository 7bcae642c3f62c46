// login.h - what a Dovecot login names, before any directory lookup (the auth plugin, dovecot-plugin/auth).
//
// A person logs in with their uid ("alice"), or with any of their addresses on any hosted domain
// ("Alice@pydis.com"), case-insensitively; a service account with its internal address
// ("fortune@int.pydis.wtf"); and Dovecot's LMTP asks the userdb for <uid>@<routing.mailbox_domain>.
// parse_login() turns that into the two values auth.login_filter uses: %u the uid the login gives and %s the
// address on the main domain (alias domains map to it; the internal domain stays itself).
// expand_login_filter() substitutes them, escaped (RFC 4515). expand_user_template() fills the userdb
// templates of [auth] (%u uid, %d main domain).
//
// SECURITY: the login is attacker text. It is bounded (max_length) and refused when empty, when it holds
// control bytes, spaces or several '@', or when it names a domain chainmail does not host; everything that
// reaches a filter is escaped, so "*)(uid=*" is a literal (that matches nobody), never filter syntax.
// DIAGNOSTICS: LoginParse::error says why a login was refused (for the auth log; not shown to clients).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chainmail {

struct LoginDomains {
  std::string main;                  // domains.main
  std::vector<std::string> aliases;  // domains.aliases: their addresses are the main domain's
  std::string internal;              // domains.internal: service accounts
  std::string mailbox;               // routing.mailbox_domain: <uid>@mailbox is the uid itself
};

struct Login {
  std::string uid;      // %u: lower case
  std::string address;  // %s: lower case, on the main domain (or the internal one)
  friend bool operator==(const Login&, const Login&) = default;
};

struct LoginParse {
  std::optional<Login> login;
  std::string error;  // set when login is empty
};

LoginParse parse_login(std::string_view text, const LoginDomains& domains, std::size_t max_length);

// `tmpl` with %u, %s and %% replaced; the values are escaped for a filter.
std::string expand_login_filter(std::string_view tmpl, const Login& login);

// `tmpl` with %u (the uid), %d (the main domain) and %% replaced, as they are (userdb home, mail, sieve).
std::string expand_user_template(std::string_view tmpl, std::string_view uid, std::string_view main_domain);

}  // namespace chainmail
