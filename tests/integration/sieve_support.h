// sieve_support.h: what the Sieve extension suites (sieve_tools_test, sieve_lmtp_test) share: a
// chainmail.conf on the demo directory read from conf/ldap/demo.ldif (no slapd), with the authserv-id the
// test messages are stamped with, and messages carrying Authentication-Results fields.
#pragma once

#include <string>
#include <string_view>

namespace chainmail::integration {

// Our authserv-id in the generated configurations (milter.authserv_id).
inline constexpr std::string_view kSieveAuthservId = "mx.pydis.wtf";

// conf/chainmail-ldif.conf with absolute paths and milter.authserv_id = kSieveAuthservId. With a non-empty
// `ldap_uri` the directory is that LDAP server instead (for trouble: a port nobody listens on), with short
// timeouts and no cache.
std::string sieve_chainmail_conf(std::string_view ldap_uri = {});

// A message whose header starts with `authres_fields` (full lines, "Authentication-Results: ...", each
// ending in "\n"; may be empty) followed by From/To/Subject/Message-ID for `subject`.
std::string sieve_message(std::string_view subject, std::string_view authres_fields);

}  // namespace chainmail::integration
