// ldap_session.h - what chainmail's two LDAP clients share: a connection opened with chainmail's settings
// (protocol 3, timeouts, no referrals, TLS as configured, StartTLS), a simple bind, attribute values, and
// SIGPIPE ignored. ldap_directory.cc (routing lookups) and ldap_auth.cc (logins) use it; it is the only
// header besides theirs that names libldap's types, and only those two files include it.
#ifndef CHAINMAIL_ADAPTERS_LDAP_SESSION_H
#define CHAINMAIL_ADAPTERS_LDAP_SESSION_H

#include <ldap.h>
#include <sys/time.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/ldap_directory.h"

namespace chainmail::ldap_session {

struct MessageFree {
  void operator()(LDAPMessage* m) const { ldap_msgfree(m); }
};
using MessagePtr = std::unique_ptr<LDAPMessage, MessageFree>;

timeval to_timeval(std::chrono::milliseconds ms);

// Every value of `attr` in `entry` (none when `attr` is empty or absent).
std::vector<std::string> values_of(LDAP* ld, LDAPMessage* entry, const std::string& attr);

// libldap writes to its sockets with plain write(): a server that reset the connection (or an asynchronous
// connect that failed) raises SIGPIPE, whose default action kills the whole process (the milter, an auth
// worker). Every chainmail process that talks LDAP ignores it, as daemons do; the write then fails with
// EPIPE and becomes trouble. A handler someone else installed is left alone.
void ignore_sigpipe();

// A handle for `uri` with `options`' timeouts and TLS settings, StartTLS done when asked for; nothing is
// sent before that (binding is the caller's next step). nullptr and `why` when it cannot be had. The caller
// owns the handle (ldap_unbind_ext_s).
LDAP* open(const std::string& uri, const LdapOptions& options, std::string& why);

// A simple bind as `dn` (empty: anonymous) with `password`: libldap's result code.
int simple_bind(LDAP* ld, const std::string& dn, std::string_view password);

}  // namespace chainmail::ldap_session

#endif  // CHAINMAIL_ADAPTERS_LDAP_SESSION_H
