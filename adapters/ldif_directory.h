// ldif_directory.h - a directory read from an LDIF file: the embedded default for the CLI and small setups.
//
// The whole file is loaded at construction (RFC 2849, parsed by libldap's LDIF reader) and indexed the way
// the LDAP directory searches: users by mail under the user base, groups by cn under the group base, entries
// by normalised DN. Matching is case-insensitive, as LDAP's mail and cn matching rules are. The filter
// templates of the configuration are LDAP-only; the LDIF directory uses the bases and attribute names.
//
// DIAGNOSTICS: a file that cannot be read or parsed throws std::runtime_error naming the file and line.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "adapters/directory_schema.h"
#include "core/directory.h"

namespace chainmail {

class LdifDirectory : public Directory {
 public:
  LdifDirectory(const std::filesystem::path& file, DirectorySchema schema);

  Lookup<EntryPtr> user_by_mail(std::string_view address) override;
  Lookup<EntryPtr> group_by_name(std::string_view name) override;
  Lookup<EntryPtr> entry_by_dn(std::string_view dn) override;

  std::size_t size() const { return entries_.size(); }

 private:
  Lookup<EntryPtr> unique(const std::unordered_multimap<std::string, std::size_t>& index,
                          const std::string& key, std::string_view what) const;

  DirectorySchema schema_;
  std::vector<EntryPtr> entries_;
  std::unordered_map<std::string, std::size_t> by_dn_;
  std::unordered_multimap<std::string, std::size_t> users_by_mail_;
  std::unordered_multimap<std::string, std::size_t> groups_by_cn_;
};

// The normalised form used to compare DNs: RFC 4514 string, attribute types and values lower-cased.
std::string normalize_dn(std::string_view dn);

}  // namespace chainmail
