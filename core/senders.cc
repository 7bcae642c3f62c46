// senders.cc - see senders.h.
#include "core/senders.h"

#include <algorithm>

#include "core/address.h"
#include "core/route_format.h"

namespace chainmail {
namespace {

bool is_login_name(std::string_view uid) {
  return !uid.empty() && std::all_of(uid.begin(), uid.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '@';
  });
}

}  // namespace

Lookup<std::vector<std::string>> sender_logins(const Config& config, Directory& directory,
                                               std::string_view sender) {
  using Result = Lookup<std::vector<std::string>>;
  const auto parsed = parse_address(sender);
  if (!parsed.address) return Result::not_found();
  const Address& address = *parsed.address;  // domain already lower case

  // Which directory address the key stands for: alias domains are the same people as the main domain.
  const std::string main = ascii_lower(config.domains.main);
  const std::string internal = ascii_lower(config.domains.internal);
  std::string domain;
  if (address.domain == main ||
      std::any_of(config.domains.aliases.begin(), config.domains.aliases.end(),
                  [&address](const std::string& d) { return iequals(d, address.domain); })) {
    domain = main;
  } else if (!internal.empty() && address.domain == internal) {
    domain = internal;
  } else {
    return Result::not_found();
  }

  const LocalPart lp = split_detail(address.local, config.routing.recipient_delimiter);
  // A base that is not a dot-atom (a quoted local part) names no directory user: directory mail values are
  // plain addresses, and such a key must not reach a filter only to be escaped.
  if (!is_dot_atom(lp.base)) return Result::not_found();
  const std::string directory_address = lp.base + "@" + domain;
  auto user = directory.user_by_mail(directory_address);
  if (user.is_trouble()) return Result::trouble(user.trouble_info());
  if (user.is_not_found()) return Result::not_found();
  const Entry& entry = *user.value();
  if (!is_login_name(entry.uid)) {
    return Result::trouble(
        Trouble::configuration(entry.dn + " owns " + directory_address + " but its uid is not a login name"));
  }
  return Result::found({ascii_lower(entry.uid)});
}

std::string senders_socketmap_reply(const Lookup<std::vector<std::string>>& logins) {
  if (logins.is_trouble()) return "TEMP " + sanitize(logins.trouble_info().reason);
  if (logins.is_not_found() || logins.value().empty()) return "NOTFOUND ";
  std::string out = "OK ";
  for (std::size_t i = 0; i < logins.value().size(); ++i) {
    if (i != 0) out += ",";
    out += logins.value()[i];
  }
  return out;
}

}  // namespace chainmail
