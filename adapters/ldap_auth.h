// ldap_auth.h - password checks and user lookups for Dovecot (dovecot-plugin/auth), over libldap.
//
//   LdapAuth auth(LdapAuthOptions::from(config));
//   AuthResult r = auth.verify("Alice@pydis.com", "alice-pw");  // r.verdict == Verdict::ok, r.uid == "alice"
//   Lookup<AuthUser> u = auth.find("alice");                    // userdb
//   Lookup<std::vector<std::string>> all = auth.list_users();   // `doveadm user '*'`
//
// verify(): the login is parsed (core/login.h), one search under the user base with auth.login_filter
// (values escaped) on the service connection (directory.bind_dn) finds the entry and reads its uid, lock,
// gate and opt-out attributes; a locked entry or one whose auth.gate_attribute lacks the gate group's DN is
// refused without a bind; otherwise one simple bind as the entry's DN with the password, on a second
// connection kept for user binds only (the service connection keeps its identity). At most one search and
// one bind per login; a connection found dead is replaced once before the operation counts as trouble.
// Both connections are kept open between logins. Calls are serialised (one mutex): Dovecot runs this in
// auth-worker processes, one request at a time each.
//
// SECURITY: the password never reaches a bind when it is empty (an unauthenticated simple bind "succeeds")
// or longer than auth.max_password_length; the login is bounded by auth.max_login_length. Passwords are
// never logged. Every operation is bounded by directory.search_timeout_ms, connects by connect_timeout_ms.
// DIAGNOSTICS: Verdict::trouble (server down, slow, refusing, several entries for one login) is never
// reported as a wrong password; AuthResult::reason says what happened, for the auth log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/ldap_directory.h"
#include "core/config.h"
#include "core/login.h"
#include "core/lookup.h"

namespace chainmail {

struct LdapAuthOptions {
  LdapOptions ldap;  // servers, service bind, TLS, timeouts, size limit (directory.*)
  std::string user_base;
  std::string login_filter;  // auth.login_filter
  std::string gate_dn;       // the DN of auth.gate_group under the group base; empty: no gate
  std::string gate_attribute, uid_attribute, lock_attribute, opt_out_attribute;
  LoginDomains domains;
  std::size_t max_login_length = 320;
  std::size_t max_password_length = 1024;

  static LdapAuthOptions from(const Config& config);  // bind_password already resolved from its file
};

enum class Verdict {
  ok,        // password verified; uid set
  mismatch,  // wrong password
  unknown,   // no such login (or a login form that cannot name anyone)
  disabled,  // locked, outside the gate, or refused by the server's account policy
  refused,   // empty or over-long password, refused before any directory access
  trouble,   // directory down, slow, or answering several entries: temporary, never "wrong password"
};

struct AuthResult {
  Verdict verdict = Verdict::trouble;
  std::string uid;     // the canonical user name (lower case) when the entry was found
  std::string reason;  // for the log: why it was refused, or what went wrong
};

struct AuthUser {
  std::string dn;
  std::string uid;  // lower case
  bool locked = false;
  bool in_gate = false;
  bool opt_out = false;  // lmtp.opt_out_attribute is TRUE
};

class LdapAuth {
 public:
  explicit LdapAuth(LdapAuthOptions options);
  ~LdapAuth();
  LdapAuth(const LdapAuth&) = delete;
  LdapAuth& operator=(const LdapAuth&) = delete;

  AuthResult verify(std::string_view login, std::string_view password);
  // The entry a login names, whatever its gate and lock (the caller decides). Not found also for a login
  // that cannot name anyone (Lookup has no reason for it: see parse_login).
  Lookup<AuthUser> find(std::string_view login);
  // The uid of every user in the gate (locked ones included: they still get mail), sorted.
  Lookup<std::vector<std::string>> list_users();

  const LdapAuthOptions& options() const { return options_; }
  std::uint64_t searches() const { return searches_; }
  std::uint64_t binds() const { return binds_; }

 private:
  struct Ldap;
  struct LdapDeleter {
    void operator()(Ldap* l) const;
  };
  using LdapPtr = std::unique_ptr<Ldap, LdapDeleter>;

  Lookup<LdapPtr> connect(bool service_bind);
  Lookup<AuthUser> search_user(const Login& login);
  // Runs one search on the service connection (reconnecting once when the kept one is dead) and returns
  // the LDAP result code with the result message; the caller owns the message.
  struct Search;
  Lookup<AuthUser> parse_user(const Search& search, const Login& login) const;
  int bind_user(const std::string& dn, std::string_view password, std::string& why);

  LdapAuthOptions options_;
  std::mutex mutex_;
  LdapPtr service_;
  LdapPtr binder_;
  std::uint64_t searches_ = 0;
  std::uint64_t binds_ = 0;
};

}  // namespace chainmail
