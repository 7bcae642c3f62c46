// senders.h - who may send as an address: the socketmap map "senders" behind Postfix's
// smtpd_sender_login_maps (pure; the directory is passed in).
//
// An authenticated submission client (SASL login = the directory uid, lower case, as Dovecot's passdb
// answers it) may use a MAIL FROM address when this map lists its login for that address:
//   - an address on the main domain or any alias domain: the directory user whose mail is that address on
//     the main domain (alice@pydis.com and ALICE@pydis.wtf -> alice). A user whose mail is forwarded
//     elsewhere still owns the address: the person has an account and may send as it.
//   - an address on the internal domain: the service account whose mail it is (dmarc@int.pydis.wtf -> dmarc).
//   - a recipient detail is ignored (alice+lists@pydis.wtf -> alice): Postfix asks a socketmap for the full
//     key only, without stripping the extension itself.
//   - anything else (groups, static aliases, transports without a directory user, other domains, the
//     mailbox and service domains, keys that are not addresses): nobody, so Postfix refuses the sender.
// Locked users are still listed: their login is refused by Dovecot, so listing them grants nothing.
//
// SECURITY: the key is attacker-controlled (MAIL FROM); it is parsed and bounded by parse_address() before
// it reaches the directory. A uid is answered only if it is a plain login name (letters, digits, . _ - @):
// a uid holding a comma or space would name more logins than the directory says, so it is configuration
// trouble. Trouble is never "not found": a directory that is down makes Postfix answer 4xx.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/directory.h"
#include "core/lookup.h"

namespace chainmail {

// The logins (lower-case uids) allowed to send as `sender`; not found when nobody may.
Lookup<std::vector<std::string>> sender_logins(const Config& config, Directory& directory,
                                               std::string_view sender);

// The socketmap reply for map "senders": "OK uid[,uid...]", "NOTFOUND " or "TEMP reason" (sanitised).
std::string senders_socketmap_reply(const Lookup<std::vector<std::string>>& logins);

}  // namespace chainmail
