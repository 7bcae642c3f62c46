// ldap_directory.h - the production directory: LDAP over libldap.
//
// URIs are tried in order (failover); a connection is bound once (simple bind, optional StartTLS or ldaps://
// with a CA file) and reused across lookups from any thread through a small pool. Users are found with the
// configured filter under the user base, groups under the group base, entries by a base-scope search.
//
// SECURITY: every value entering a filter is escaped (RFC 4515, core/ldap_escape.h); an empty password never
// reaches a bind (that would be an unauthenticated bind that "succeeds"); searches are bounded by size_limit
// and search_timeout_ms.
// DIAGNOSTICS: a server that is down, slow, refusing or answering oddly is trouble (temporary, or
// configuration for bad credentials, bad filters or too many results), never "not found". round_trips()
// counts the searches sent, for the benchmark and for `chainmail route --stats`.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "adapters/directory_schema.h"

// libldap's handles, without including <ldap.h> here.
struct ldap;
struct ldapmsg;
using LDAP = struct ldap;
using LDAPMessage = struct ldapmsg;
#include "core/directory.h"

namespace chainmail {

struct LdapOptions {
  std::vector<std::string> uris;
  std::string bind_dn;
  std::string bind_password;
  bool starttls = false;
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds search_timeout{5000};
  int size_limit = 1000;
  std::size_t max_connections = 8;
  DirectorySchema schema;

  static LdapOptions from(const Config& config);  // bind_password already resolved from its file
};

class LdapDirectory : public Directory {
 public:
  explicit LdapDirectory(LdapOptions options);
  ~LdapDirectory() override;
  LdapDirectory(const LdapDirectory&) = delete;
  LdapDirectory& operator=(const LdapDirectory&) = delete;

  Lookup<EntryPtr> user_by_mail(std::string_view address) override;
  Lookup<EntryPtr> group_by_name(std::string_view name) override;
  Lookup<EntryPtr> entry_by_dn(std::string_view dn) override;
  std::vector<Lookup<EntryPtr>> entries_by_dn(std::span<const std::string> dns) override;

  std::uint64_t round_trips() const { return searches_.load(std::memory_order_relaxed); }

 private:
  struct Connection;
  struct ConnectionDeleter {
    void operator()(Connection* c) const;
  };
  using ConnectionPtr = std::unique_ptr<Connection, ConnectionDeleter>;

  struct Query {
    std::string base;
    int scope;
    std::string filter;
    std::string_view what;  // for messages
  };
  // Sends every query on one connection, then reads the answers (pipelining); retries once on a fresh
  // connection (with failover) when the pooled one turns out to be dead.
  std::vector<Lookup<EntryPtr>> run(std::span<const Query> queries);
  Lookup<EntryPtr> search_one(Query query);
  // The answer to one query from its result message and result code.
  Lookup<EntryPtr> answer(LDAP* ld, LDAPMessage* result, int rc, const Query& q,
                          const std::string& uri) const;
  bool in_user_base(const std::string& dn) const;
  Lookup<ConnectionPtr> acquire();
  void release(ConnectionPtr c);
  void discard();
  Lookup<ConnectionPtr> connect();

  LdapOptions options_;
  bool user_filter_is_mail_;  // the user filter is exactly (MAIL=%s): see Entry::is_user
  std::vector<char*> attrs_;  // NULL-terminated list for ldap_search_ext_s
  std::vector<std::string> attr_storage_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<ConnectionPtr> idle_;
  std::size_t open_ = 0;
  std::atomic<std::uint64_t> searches_{0};
};

}  // namespace chainmail
