// directory.h - the directory the router asks: users, groups and entries by DN.
//
// Implementations: adapters/ldap_directory (libldap, production), adapters/ldif_directory (a file, the
// embedded default), adapters/cached_directory (a bounded cache that is itself a directory), and fakes in
// unit tests. Every method returns found / not found / trouble (lookup.h); an implementation must never turn
// an error into "not found". Implementations are called from many threads at once.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lookup.h"

namespace chainmail {

// The attributes of one directory entry that routing needs. Which LDAP attribute fills which field is
// configuration (directory.*_attribute); the router never sees attribute names.
struct Entry {
  std::string dn;
  std::string uid;
  std::vector<std::string> mail;
  std::vector<std::string> forward;  // forwarding addresses (FreeIPA: registeredAddress)
  std::vector<std::string> member;   // member DNs, for groups
  bool locked = false;               // nsAccountLock: login refused; mail still delivered
  // Set by the directory when user_by_mail(m) would find this very entry for each of its mail values m (it
  // is in the user base and the user filter only matches mail). Lets the router route a group member's mail
  // without asking again for the entry it already holds.
  bool is_user = false;
};

// Entries are shared, immutable once returned: the cache hands out the same entry to every thread.
using EntryPtr = std::shared_ptr<const Entry>;

class Directory {
 public:
  virtual ~Directory() = default;

  // The user whose mail attribute equals `address`, matched as the directory matches it (for LDAP mail,
  // case-insensitively). Several users with the same address are configuration trouble.
  virtual Lookup<EntryPtr> user_by_mail(std::string_view address) = 0;

  // The group named `name` (FreeIPA: its cn).
  virtual Lookup<EntryPtr> group_by_name(std::string_view name) = 0;

  // Any entry by its DN (group members). A DN that does not exist is not found, not trouble.
  virtual Lookup<EntryPtr> entry_by_dn(std::string_view dn) = 0;

  // Several entries by DN, answers in the same order (a group's members). The LDAP directory sends every
  // search before reading any answer, so a group costs one network round trip instead of one per member.
  virtual std::vector<Lookup<EntryPtr>> entries_by_dn(std::span<const std::string> dns) {
    std::vector<Lookup<EntryPtr>> out;
    out.reserve(dns.size());
    for (const auto& dn : dns) out.push_back(entry_by_dn(dn));
    return out;
  }
};

}  // namespace chainmail
