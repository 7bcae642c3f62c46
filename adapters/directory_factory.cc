#include "adapters/directory_factory.h"

#include "adapters/ldif_directory.h"

namespace chainmail {

DirectoryStack::DirectoryStack(const Config& config) {
  if (!config.directory.uris.empty()) {
    auto ldap = std::make_unique<LdapDirectory>(LdapOptions::from(config));
    ldap_ = ldap.get();
    base_ = std::move(ldap);
  } else {
    base_ = std::make_unique<LdifDirectory>(config.directory.ldif_file, DirectorySchema::from(config));
  }
  if (config.cache.max_entries > 0) {
    cache_ = std::make_unique<CachedDirectory>(
        *base_, CacheOptions{static_cast<std::size_t>(config.cache.max_entries),
                             std::chrono::seconds(config.cache.positive_ttl_s),
                             std::chrono::seconds(config.cache.negative_ttl_s)});
  }
}

}  // namespace chainmail
