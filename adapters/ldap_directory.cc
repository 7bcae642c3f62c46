#include "adapters/ldap_directory.h"

#include <ldap.h>
#include <sys/time.h>

#include <utility>

#include "adapters/ldap_session.h"
#include "core/address.h"
#include "core/ldap_escape.h"

namespace chainmail {

struct LdapDirectory::Connection {
  LDAP* ld = nullptr;
  std::string uri;
};

void LdapDirectory::ConnectionDeleter::operator()(Connection* c) const {
  if (c->ld != nullptr) ldap_unbind_ext_s(c->ld, nullptr, nullptr);
  delete c;
}

using ldap_session::MessagePtr;
using ldap_session::to_timeval;
using ldap_session::values_of;

LdapOptions LdapOptions::from(const Config& config) {
  const auto& d = config.directory;
  LdapOptions o;
  o.uris = d.uris;
  o.bind_dn = d.bind_dn;
  o.bind_password = d.bind_password;
  o.starttls = d.starttls;
  o.ca_file = d.ca_file;
  o.connect_timeout = std::chrono::milliseconds(d.connect_timeout_ms);
  o.search_timeout = std::chrono::milliseconds(d.search_timeout_ms);
  o.size_limit = static_cast<int>(d.size_limit);
  o.max_connections = static_cast<std::size_t>(d.max_connections);
  o.schema = DirectorySchema::from(config);
  return o;
}

LdapDirectory::LdapDirectory(LdapOptions options)
    : options_(std::move(options)),
      user_filter_is_mail_(iequals(options_.schema.user_filter, "(" + options_.schema.mail + "=%s)")) {
  ldap_session::ignore_sigpipe();
  const auto& s = options_.schema;
  for (const std::string* a : {&s.mail, &s.uid, &s.forward, &s.member, &s.lock}) {
    if (!a->empty()) attr_storage_.push_back(*a);
  }
  for (auto& a : attr_storage_) attrs_.push_back(a.data());
  attrs_.push_back(nullptr);
}

LdapDirectory::~LdapDirectory() = default;

Lookup<LdapDirectory::ConnectionPtr> LdapDirectory::connect() {
  using R = Lookup<ConnectionPtr>;
  if (!options_.bind_dn.empty() && options_.bind_password.empty()) {
    // An empty password makes a simple bind "unauthenticated" and it succeeds without proving anything.
    return R::trouble(Trouble::configuration("directory.bind_dn is set but the bind password is empty"));
  }
  std::string failures;
  for (const auto& uri : options_.uris) {
    ConnectionPtr c(new Connection{nullptr, uri});
    auto failed = [&](const std::string& why) {
      failures += (failures.empty() ? "" : "; ") + uri + ": " + why;
    };
    std::string why;
    c->ld = ldap_session::open(uri, options_, why);
    if (c->ld == nullptr) {
      failed(why);
      continue;
    }
    const int rc = ldap_session::simple_bind(c->ld, options_.bind_dn, options_.bind_password);
    if (rc == LDAP_INVALID_CREDENTIALS) {
      return R::trouble(
          Trouble::configuration(uri + ": bind as " + options_.bind_dn + " refused: " + ldap_err2string(rc)));
    }
    if (rc != LDAP_SUCCESS) {
      failed(std::string("bind: ") + ldap_err2string(rc));
      continue;
    }
    return R::found(std::move(c));
  }
  return R::trouble(Trouble::temporary("no LDAP server answered (" + failures + ")"));
}

Lookup<LdapDirectory::ConnectionPtr> LdapDirectory::acquire() {
  std::unique_lock lock(mutex_);
  available_.wait(lock, [this] { return !idle_.empty() || open_ < options_.max_connections; });
  if (!idle_.empty()) {
    ConnectionPtr c = std::move(idle_.back());
    idle_.pop_back();
    return Lookup<ConnectionPtr>::found(std::move(c));
  }
  ++open_;
  lock.unlock();
  auto c = connect();  // outside the lock: connecting may take connect_timeout per URI
  if (!c.is_found()) discard();
  return c;
}

void LdapDirectory::release(ConnectionPtr c) {
  {
    const std::lock_guard lock(mutex_);
    idle_.push_back(std::move(c));
  }
  available_.notify_one();
}

void LdapDirectory::discard() {
  {
    const std::lock_guard lock(mutex_);
    --open_;
  }
  available_.notify_one();
}

namespace {

// Result codes after which the connection cannot be trusted (no answer, or gone): drop it.
bool connection_broken(int rc) {
  return rc == LDAP_TIMEOUT || rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_UNAVAILABLE ||
         rc == LDAP_BUSY;
}

bool temporary_error(int rc) {
  return connection_broken(rc) || rc == LDAP_TIMELIMIT_EXCEEDED || rc == LDAP_ADMINLIMIT_EXCEEDED;
}

}  // namespace

std::vector<Lookup<EntryPtr>> LdapDirectory::run(std::span<const Query> queries) {
  using R = Lookup<EntryPtr>;
  std::vector<R> out;
  out.reserve(queries.size());
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto acquired = acquire();
    if (acquired.is_trouble()) {
      out.assign(queries.size(), R::trouble(acquired.trouble_info()));
      return out;
    }
    ConnectionPtr conn = acquired.take();
    LDAP* ld = conn->ld;

    // Send everything first: the server works on the searches while we read the first answers.
    std::vector<int> msgids;
    msgids.reserve(queries.size());
    int failed_rc = LDAP_SUCCESS;
    for (const auto& q : queries) {
      timeval timeout = to_timeval(options_.search_timeout);
      int msgid = 0;
      searches_.fetch_add(1, std::memory_order_relaxed);
      failed_rc = ldap_search_ext(ld, q.base.c_str(), q.scope, q.filter.c_str(), attrs_.data(), 0, nullptr,
                                  nullptr, &timeout, options_.size_limit, &msgid);
      if (failed_rc != LDAP_SUCCESS) break;
      msgids.push_back(msgid);
    }

    bool broken = failed_rc != LDAP_SUCCESS;
    for (std::size_t i = 0; i < msgids.size() && !broken; ++i) {
      timeval timeout = to_timeval(options_.search_timeout);
      LDAPMessage* raw = nullptr;
      const int got = ldap_result(ld, msgids[i], LDAP_MSG_ALL, &timeout, &raw);
      const MessagePtr result(raw);
      int rc = LDAP_SUCCESS;
      if (got == 0) {
        rc = LDAP_TIMEOUT;
      } else if (got < 0) {
        ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &rc);
        if (rc == LDAP_SUCCESS) rc = LDAP_SERVER_DOWN;
      } else if (ldap_parse_result(ld, result.get(), &rc, nullptr, nullptr, nullptr, nullptr, 0) !=
                 LDAP_SUCCESS) {
        rc = LDAP_DECODING_ERROR;
      }
      if (connection_broken(rc)) {
        broken = true;
        failed_rc = rc;
        break;
      }
      out.push_back(answer(ld, result.get(), rc, queries[i], conn->uri));
    }
    if (!broken) {
      release(std::move(conn));
      return out;
    }
    const std::string uri = conn->uri;
    conn.reset();  // unknown state: pending requests are abandoned with the connection
    discard();
    if (attempt == 0 && out.empty() && (failed_rc == LDAP_SERVER_DOWN || failed_rc == LDAP_CONNECT_ERROR)) {
      continue;  // a stale pooled connection (server restarted): once more on a fresh one, with failover
    }
    const std::size_t done = out.size();
    out.resize(queries.size(), R::not_found());
    for (std::size_t i = done; i < queries.size(); ++i) {
      out[i] = R::trouble(Trouble::temporary(uri + ": search for " + std::string(queries[i].what) + ": " +
                                             ldap_err2string(failed_rc)));
    }
    return out;
  }
  out.assign(queries.size(), R::trouble(Trouble::temporary("LDAP connection lost twice")));
  return out;
}

Lookup<EntryPtr> LdapDirectory::answer(LDAP* ld, LDAPMessage* result, int rc, const Query& q,
                                       const std::string& uri) const {
  using R = Lookup<EntryPtr>;
  if (rc == LDAP_NO_SUCH_OBJECT) return R::not_found();
  if (rc != LDAP_SUCCESS) {
    const std::string why = uri + ": search for " + std::string(q.what) + ": " + ldap_err2string(rc);
    if (rc == LDAP_SIZELIMIT_EXCEEDED) {
      return R::trouble(Trouble::configuration(
          why + " (more than directory.size_limit = " + std::to_string(options_.size_limit) + " entries)"));
    }
    return R::trouble(temporary_error(rc) ? Trouble::temporary(why) : Trouble::configuration(why));
  }
  std::vector<std::shared_ptr<Entry>> entries;
  for (LDAPMessage* e = ldap_first_entry(ld, result); e != nullptr; e = ldap_next_entry(ld, e)) {
    auto entry = std::make_shared<Entry>();
    if (char* dn = ldap_get_dn(ld, e); dn != nullptr) {
      entry->dn = dn;
      ldap_memfree(dn);
    }
    const auto& s = options_.schema;
    const auto uid = values_of(ld, e, s.uid);
    if (!uid.empty()) entry->uid = uid.front();
    entry->mail = values_of(ld, e, s.mail);
    entry->forward = values_of(ld, e, s.forward);
    entry->member = values_of(ld, e, s.member);
    const auto lock = values_of(ld, e, s.lock);
    entry->locked = !lock.empty() && iequals(lock.front(), "true");
    entry->is_user = user_filter_is_mail_ && in_user_base(entry->dn);
    entries.push_back(std::move(entry));
  }
  if (entries.empty()) return R::not_found();
  if (entries.size() > 1) {
    return R::trouble(Trouble::configuration(std::to_string(entries.size()) + " entries match " +
                                             std::string(q.what) + " (" + entries[0]->dn + ", " +
                                             entries[1]->dn + ")"));
  }
  return R::found(std::move(entries.front()));
}

Lookup<EntryPtr> LdapDirectory::search_one(Query query) {
  return std::move(run(std::span<const Query>(&query, 1)).front());
}

bool LdapDirectory::in_user_base(const std::string& dn) const {
  // The server returns DNs in its own normalised spelling of the base; compare without case. A DN that
  // spells the base differently only loses the shortcut (one more search), never correctness.
  const std::string& base = options_.schema.user_base;
  return dn.size() > base.size() && dn[dn.size() - base.size() - 1] == ',' &&
         iequals(std::string_view(dn).substr(dn.size() - base.size()), base);
}

Lookup<EntryPtr> LdapDirectory::user_by_mail(std::string_view address) {
  return search_one({options_.schema.user_base, LDAP_SCOPE_SUBTREE,
                     expand_filter(options_.schema.user_filter, address), address});
}

Lookup<EntryPtr> LdapDirectory::group_by_name(std::string_view name) {
  return search_one({options_.schema.group_base, LDAP_SCOPE_SUBTREE,
                     expand_filter(options_.schema.group_filter, name), name});
}

// A DN from a member attribute comes from the directory itself, but it may be malformed; the server answers
// that with invalidDNSyntax, which is configuration trouble, not a crash.
Lookup<EntryPtr> LdapDirectory::entry_by_dn(std::string_view dn) {
  return search_one({std::string(dn), LDAP_SCOPE_BASE, "(objectClass=*)", dn});
}

std::vector<Lookup<EntryPtr>> LdapDirectory::entries_by_dn(std::span<const std::string> dns) {
  std::vector<Query> queries;
  queries.reserve(dns.size());
  for (const auto& dn : dns) queries.push_back({dn, LDAP_SCOPE_BASE, "(objectClass=*)", dn});
  return run(queries);
}

}  // namespace chainmail
