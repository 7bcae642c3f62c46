// login.cc - see login.h.
#include "core/login.h"

#include <algorithm>
#include <optional>

#include "core/address.h"
#include "core/ldap_escape.h"
#include "core/percent_template.h"

namespace chainmail {
namespace {

LoginParse refuse(std::string why) {
  return {std::nullopt, std::move(why)};
}

bool bad_byte(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return c <= 0x20 || c == 0x7f;
}

}  // namespace

LoginParse parse_login(std::string_view text, const LoginDomains& domains, std::size_t max_length) {
  if (text.empty()) return refuse("empty login");
  if (text.size() > max_length) return refuse("login longer than " + std::to_string(max_length) + " bytes");
  if (std::any_of(text.begin(), text.end(), bad_byte)) return refuse("control byte or space in the login");
  const std::string lower = ascii_lower(text);
  const std::size_t at = lower.find('@');
  if (at == std::string::npos) return {Login{lower, lower + "@" + ascii_lower(domains.main)}, {}};
  if (lower.find('@', at + 1) != std::string::npos) return refuse("more than one '@' in the login");
  const std::string local = lower.substr(0, at);
  const std::string domain = lower.substr(at + 1);
  if (local.empty()) return refuse("empty local part");
  const std::string main = ascii_lower(domains.main);
  if (domain == main) return {Login{local, lower}, {}};
  if (!domains.internal.empty() && iequals(domain, domains.internal)) return {Login{local, lower}, {}};
  for (const auto& alias : domains.aliases) {
    if (iequals(domain, alias)) return {Login{local, local + "@" + main}, {}};
  }
  if (!domains.mailbox.empty() && iequals(domain, domains.mailbox))
    return {Login{local, local + "@" + main}, {}};
  return refuse("domain is not hosted here");
}

std::string expand_login_filter(std::string_view tmpl, const Login& login) {
  return expand_percent(tmpl, [&login](char name) -> std::optional<std::string> {
    if (name == 'u') return escape_filter_value(login.uid);
    if (name == 's') return escape_filter_value(login.address);
    return std::nullopt;
  });
}

std::string expand_user_template(std::string_view tmpl, std::string_view uid, std::string_view main_domain) {
  return expand_percent(tmpl, [uid, main_domain](char name) -> std::optional<std::string> {
    if (name == 'u') return std::string(uid);
    if (name == 'd') return std::string(main_domain);
    return std::nullopt;
  });
}

}  // namespace chainmail
