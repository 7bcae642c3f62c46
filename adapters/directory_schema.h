// directory_schema.h - where users and groups are and which attributes fill an Entry.
//
// Shared by the LDAP and the LDIF directory, so both read the same configuration the same way.
#pragma once

#include <string>

#include "core/config.h"
#include "core/directory.h"

namespace chainmail {

struct DirectorySchema {
  std::string user_base;                         // absolute DN
  std::string group_base;                        // absolute DN
  std::string user_filter;                       // template: %s address, %u local part, %d domain
  std::string group_filter;                      // template: %u group name
  std::string mail, uid, forward, member, lock;  // attribute names

  static DirectorySchema from(const Config& config) {
    const auto& d = config.directory;
    return {config.user_base_dn(), config.group_base_dn(), d.user_filter,
            d.group_filter,        d.mail_attribute,       d.uid_attribute,
            d.forward_attribute,   d.member_attribute,     d.lock_attribute};
  }
};

}  // namespace chainmail
