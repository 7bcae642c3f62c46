// directory_factory.h - the directory a component uses, built from chainmail.conf: LDAP when URIs are set,
// else the LDIF file; behind the cache unless cache.max_entries is 0.
#pragma once

#include <memory>

#include "adapters/cached_directory.h"
#include "adapters/ldap_directory.h"
#include "core/config.h"

namespace chainmail {

class DirectoryStack {
 public:
  explicit DirectoryStack(const Config& config);  // throws std::runtime_error (an unreadable LDIF file)

  Directory& directory() { return cache_ ? static_cast<Directory&>(*cache_) : *base_; }
  LdapDirectory* ldap() { return ldap_; }  // null for an LDIF directory
  CachedDirectory* cache() { return cache_.get(); }

 private:
  std::unique_ptr<Directory> base_;
  LdapDirectory* ldap_ = nullptr;
  std::unique_ptr<CachedDirectory> cache_;
};

}  // namespace chainmail
