// ldap_auth.cc - see ldap_auth.h.
#include "adapters/ldap_auth.h"

#include <ldap.h>
#include <sys/time.h>

#include <algorithm>
#include <utility>

#include "adapters/ldap_session.h"
#include "core/address.h"
#include "core/ldap_escape.h"

namespace chainmail {

struct LdapAuth::Ldap {
  LDAP* ld = nullptr;
  std::string uri;
};

void LdapAuth::LdapDeleter::operator()(Ldap* l) const {
  if (l->ld != nullptr) ldap_unbind_ext_s(l->ld, nullptr, nullptr);
  delete l;
}

using ldap_session::MessagePtr;
using ldap_session::to_timeval;
using ldap_session::values_of;

namespace {

bool is_true(const std::vector<std::string>& values) {
  return !values.empty() && iequals(values.front(), "true");
}

// Result codes after which a kept connection cannot be trusted: replace it.
bool connection_lost(int rc) {
  return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR;
}

// DNs from the directory and from configuration may differ in case and in spaces after commas.
std::string normal_dn(std::string_view dn) {
  std::string out;
  out.reserve(dn.size());
  bool after_comma = false;
  for (const char c : dn) {
    if (after_comma && c == ' ') continue;
    after_comma = c == ',';
    out += c;
  }
  return ascii_lower(out);
}

}  // namespace

struct LdapAuth::Search {
  int rc = LDAP_OTHER;
  MessagePtr result;
  LDAP* ld = nullptr;
  std::string uri;
  std::string error;  // set when there was no answer at all
};

LdapAuthOptions LdapAuthOptions::from(const Config& config) {
  LdapAuthOptions o;
  o.ldap = LdapOptions::from(config);
  o.user_base = config.user_base_dn();
  o.login_filter = config.auth.login_filter;
  if (!config.auth.gate_group.empty()) {
    o.gate_dn = "cn=" + escape_dn_value(config.auth.gate_group) + "," + config.group_base_dn();
  }
  o.gate_attribute = config.auth.gate_attribute;
  o.uid_attribute = config.directory.uid_attribute;
  o.lock_attribute = config.directory.lock_attribute;
  o.opt_out_attribute = config.lmtp.opt_out_attribute;
  o.domains = {config.domains.main, config.domains.aliases, config.domains.internal,
               config.routing.mailbox_domain};
  o.max_login_length = static_cast<std::size_t>(config.auth.max_login_length);
  o.max_password_length = static_cast<std::size_t>(config.auth.max_password_length);
  return o;
}

LdapAuth::LdapAuth(LdapAuthOptions options) : options_(std::move(options)) {
  ldap_session::ignore_sigpipe();
}

LdapAuth::~LdapAuth() = default;

Lookup<LdapAuth::LdapPtr> LdapAuth::connect(bool service_bind) {
  using R = Lookup<LdapPtr>;
  const auto& o = options_.ldap;
  if (service_bind && !o.bind_dn.empty() && o.bind_password.empty()) {
    return R::trouble(Trouble::configuration("directory.bind_dn is set but the bind password is empty"));
  }
  std::string failures;
  for (const auto& uri : o.uris) {
    LdapPtr c(new Ldap{nullptr, uri});
    auto failed = [&](const std::string& why) {
      failures += failures.empty() ? "" : "; ";
      failures += uri;
      failures += ": ";
      failures += why;
    };
    std::string why;
    c->ld = ldap_session::open(uri, o, why);
    if (c->ld == nullptr) {
      failed(why);
      continue;
    }
    if (!service_bind) return R::found(std::move(c));  // the user bind is its first operation
    const int rc = ldap_session::simple_bind(c->ld, o.bind_dn, o.bind_password);
    if (rc == LDAP_INVALID_CREDENTIALS) {
      return R::trouble(Trouble::configuration(uri + ": bind as " + o.bind_dn + " refused"));
    }
    if (rc != LDAP_SUCCESS) {
      failed(std::string("bind: ") + ldap_err2string(rc));
      continue;
    }
    return R::found(std::move(c));
  }
  return R::trouble(Trouble::temporary("no LDAP server answered (" + failures + ")"));
}

Lookup<AuthUser> LdapAuth::search_user(const Login& login) {
  using R = Lookup<AuthUser>;
  std::vector<std::string> names = {options_.uid_attribute, options_.lock_attribute, options_.gate_attribute,
                                    options_.opt_out_attribute};
  names.erase(std::remove(names.begin(), names.end(), std::string()), names.end());
  std::vector<char*> attrs;
  attrs.reserve(names.size() + 1);
  for (auto& n : names) attrs.push_back(n.data());
  attrs.push_back(nullptr);
  const std::string filter = expand_login_filter(options_.login_filter, login);

  Search s;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool kept = static_cast<bool>(service_);
    if (!service_) {
      auto c = connect(true);
      if (!c.is_found()) return R::trouble(c.trouble_info());
      service_ = c.take();
    }
    timeval timeout = to_timeval(options_.ldap.search_timeout);
    LDAPMessage* raw = nullptr;
    ++searches_;
    s.rc = ldap_search_ext_s(service_->ld, options_.user_base.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(),
                             attrs.data(), 0, nullptr, nullptr, &timeout, 2, &raw);
    s.result.reset(raw);
    s.ld = service_->ld;
    s.uri = service_->uri;
    if (s.rc == LDAP_SUCCESS || s.rc == LDAP_SIZELIMIT_EXCEEDED || s.rc == LDAP_NO_SUCH_OBJECT) break;
    const std::string why = s.uri + ": search for " + login.uid + ": " + ldap_err2string(s.rc);
    s.result.reset();
    service_.reset();  // unknown state after an error without an answer: never reuse it
    if (kept && attempt == 0 && connection_lost(s.rc)) continue;  // a stale kept connection
    return R::trouble(Trouble::temporary(why));
  }
  if (s.rc == LDAP_NO_SUCH_OBJECT) return R::not_found();
  if (s.rc == LDAP_SIZELIMIT_EXCEEDED) {
    return R::trouble(Trouble::configuration("several directory entries match the login " + login.uid));
  }
  return parse_user(s, login);
}

Lookup<AuthUser> LdapAuth::parse_user(const Search& s, const Login& login) const {
  using R = Lookup<AuthUser>;
  std::vector<AuthUser> users;
  for (LDAPMessage* e = ldap_first_entry(s.ld, s.result.get()); e != nullptr; e = ldap_next_entry(s.ld, e)) {
    AuthUser u;
    if (char* dn = ldap_get_dn(s.ld, e); dn != nullptr) {
      u.dn = dn;
      ldap_memfree(dn);
    }
    const auto uid = values_of(s.ld, e, options_.uid_attribute);
    if (!uid.empty()) u.uid = ascii_lower(uid.front());
    u.locked = is_true(values_of(s.ld, e, options_.lock_attribute));
    u.opt_out = is_true(values_of(s.ld, e, options_.opt_out_attribute));
    if (options_.gate_dn.empty()) {
      u.in_gate = true;
    } else {
      const std::string gate = normal_dn(options_.gate_dn);
      for (const auto& v : values_of(s.ld, e, options_.gate_attribute)) {
        if (normal_dn(v) == gate) u.in_gate = true;
      }
    }
    users.push_back(std::move(u));
  }
  if (users.empty()) return R::not_found();
  if (users.size() > 1) {
    return R::trouble(Trouble::configuration("several directory entries match the login " + login.uid + " (" +
                                             users[0].dn + ", " + users[1].dn + ")"));
  }
  if (users.front().uid.empty() || users.front().dn.empty()) {
    return R::trouble(Trouble::configuration("the entry " + users.front().dn + " found for " + login.uid +
                                             " has no " + options_.uid_attribute));
  }
  return R::found(std::move(users.front()));
}

int LdapAuth::bind_user(const std::string& dn, std::string_view password, std::string& why) {
  int rc = LDAP_OTHER;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool kept = static_cast<bool>(binder_);
    if (!binder_) {
      auto c = connect(false);
      if (!c.is_found()) {
        why = c.trouble_info().reason;
        return LDAP_SERVER_DOWN;
      }
      binder_ = c.take();
    }
    ++binds_;
    rc = ldap_session::simple_bind(binder_->ld, dn, password);
    if (rc == LDAP_SUCCESS || rc == LDAP_INVALID_CREDENTIALS) return rc;
    why = binder_->uri + ": bind as " + dn + ": " + ldap_err2string(rc);
    binder_.reset();
    if (!(kept && attempt == 0 && connection_lost(rc))) return rc;
  }
  return rc;
}

AuthResult LdapAuth::verify(std::string_view login_text, std::string_view password) {
  const LoginParse parsed = parse_login(login_text, options_.domains, options_.max_login_length);
  if (!parsed.login) return {Verdict::unknown, {}, parsed.error};
  const Login& login = *parsed.login;
  if (password.empty()) return {Verdict::refused, {}, "empty password"};
  if (password.size() > options_.max_password_length) {
    return {Verdict::refused, {}, "password longer than auth.max_password_length"};
  }
  const std::lock_guard lock(mutex_);
  auto found = search_user(login);
  if (found.is_trouble()) return {Verdict::trouble, {}, found.trouble_info().reason};
  if (found.is_not_found()) return {Verdict::unknown, {}, "no directory entry for " + login.uid};
  const AuthUser& user = found.value();
  if (user.locked) return {Verdict::disabled, user.uid, "account locked (" + options_.lock_attribute + ")"};
  if (!user.in_gate) {
    return {Verdict::disabled, user.uid,
            "not a member of " + options_.gate_dn + " (" + options_.gate_attribute + ")"};
  }
  std::string why;
  const int rc = bind_user(user.dn, password, why);
  if (rc == LDAP_SUCCESS) return {Verdict::ok, user.uid, {}};
  if (rc == LDAP_INVALID_CREDENTIALS) return {Verdict::mismatch, user.uid, "password mismatch"};
  // The server's own account policy (389-DS/FreeIPA: inactivated or locked out after failures, expired
  // password) is a refusal, not trouble: waiting does not help.
  if (rc == LDAP_UNWILLING_TO_PERFORM || rc == LDAP_INAPPROPRIATE_AUTH || rc == LDAP_CONSTRAINT_VIOLATION ||
      rc == LDAP_INSUFFICIENT_ACCESS) {
    return {Verdict::disabled, user.uid, "the directory refused the bind: " + why};
  }
  return {Verdict::trouble, user.uid, why};
}

Lookup<AuthUser> LdapAuth::find(std::string_view login_text) {
  const LoginParse parsed = parse_login(login_text, options_.domains, options_.max_login_length);
  if (!parsed.login) return Lookup<AuthUser>::not_found();
  const std::lock_guard lock(mutex_);
  return search_user(*parsed.login);
}

Lookup<std::vector<std::string>> LdapAuth::list_users() {
  using R = Lookup<std::vector<std::string>>;
  std::string filter = "(" + options_.uid_attribute + "=*)";
  if (!options_.gate_dn.empty()) {
    filter =
        "(&" + filter + "(" + options_.gate_attribute + "=" + escape_filter_value(options_.gate_dn) + "))";
  }
  std::string uid_attr = options_.uid_attribute;
  char* attrs[] = {uid_attr.data(), nullptr};
  const std::lock_guard lock(mutex_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool kept = static_cast<bool>(service_);
    if (!service_) {
      auto c = connect(true);
      if (!c.is_found()) return R::trouble(c.trouble_info());
      service_ = c.take();
    }
    timeval timeout = to_timeval(options_.ldap.search_timeout);
    LDAPMessage* raw = nullptr;
    ++searches_;
    const int rc =
        ldap_search_ext_s(service_->ld, options_.user_base.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(), attrs,
                          0, nullptr, nullptr, &timeout, options_.ldap.size_limit, &raw);
    const MessagePtr result(raw);
    if (rc == LDAP_NO_SUCH_OBJECT) return R::found({});
    if (rc == LDAP_SIZELIMIT_EXCEEDED) {
      return R::trouble(Trouble::configuration("more users than directory.size_limit = " +
                                               std::to_string(options_.ldap.size_limit)));
    }
    if (rc != LDAP_SUCCESS) {
      const std::string why = service_->uri + ": listing users: " + ldap_err2string(rc);
      service_.reset();
      if (kept && attempt == 0 && connection_lost(rc)) continue;
      return R::trouble(Trouble::temporary(why));
    }
    std::vector<std::string> uids;
    for (LDAPMessage* e = ldap_first_entry(service_->ld, result.get()); e != nullptr;
         e = ldap_next_entry(service_->ld, e)) {
      const auto v = values_of(service_->ld, e, options_.uid_attribute);
      if (!v.empty()) uids.push_back(ascii_lower(v.front()));
    }
    std::sort(uids.begin(), uids.end());
    uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
    return R::found(std::move(uids));
  }
  return R::trouble(Trouble::temporary("LDAP connection lost twice"));
}

}  // namespace chainmail
