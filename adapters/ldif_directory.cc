#include "adapters/ldif_directory.h"

#include <ldap.h>
#include <ldif.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "core/address.h"

namespace chainmail {
namespace {

struct LdifClose {
  void operator()(LDIFFP* f) const { ldif_close(f); }
};

bool under(const std::string& normalized_dn, const std::string& normalized_base) {
  if (normalized_base.empty()) return true;
  if (normalized_dn.size() <= normalized_base.size()) return normalized_dn == normalized_base;
  return normalized_dn.compare(normalized_dn.size() - normalized_base.size(), std::string::npos,
                               normalized_base) == 0 &&
         normalized_dn[normalized_dn.size() - normalized_base.size() - 1] == ',';
}

}  // namespace

std::string normalize_dn(std::string_view dn) {
  const std::string in(dn);
  char* out = nullptr;
  if (ldap_dn_normalize(in.c_str(), LDAP_DN_FORMAT_LDAP, &out, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS ||
      out == nullptr) {
    return ascii_lower(dn);  // not a valid DN: it can only match itself
  }
  std::string normalized = ascii_lower(out);
  ldap_memfree(out);
  return normalized;
}

LdifDirectory::LdifDirectory(const std::filesystem::path& file, DirectorySchema schema)
    : schema_(std::move(schema)) {
  const std::unique_ptr<LDIFFP, LdifClose> fp(ldif_open(file.c_str(), "r"));
  if (!fp) throw std::runtime_error(file.string() + ": cannot open LDIF file");
  const std::string user_base = normalize_dn(schema_.user_base);
  const std::string group_base = normalize_dn(schema_.group_base);

  unsigned long line = 0;
  char* buf = nullptr;
  int buflen = 0;
  struct BufFree {
    char*& b;
    ~BufFree() { ber_memfree(b); }
  } buf_free{buf};
  while (true) {
    const unsigned long record_line = line + 1;
    const int got = ldif_read_record(fp.get(), &line, &buf, &buflen);
    if (got == 0) break;
    if (got < 0)
      throw std::runtime_error(file.string() + ":" + std::to_string(record_line) + ": cannot read");
    berval rbuf{};
    rbuf.bv_val = buf;
    rbuf.bv_len = std::strlen(buf);
    LDIFRecord rec{};
    if (ldap_parse_ldif_record(&rbuf, record_line, &rec, "chainmail", LDIF_DEFAULT_ADD | LDIF_ENTRIES_ONLY) !=
        LDAP_SUCCESS) {
      throw std::runtime_error(file.string() + ":" + std::to_string(record_line) + ": invalid LDIF record");
    }
    struct RecordDone {
      LDIFRecord& r;
      ~RecordDone() { ldap_ldif_record_done(&r); }
    } done{rec};
    if (rec.lr_op != LDAP_REQ_ADD || rec.lrop_mods == nullptr) continue;  // version: lines, changes

    Entry e;
    e.dn.assign(rec.lr_dn.bv_val, rec.lr_dn.bv_len);
    std::vector<std::string> cn;
    for (LDAPMod** m = rec.lrop_mods; *m != nullptr; ++m) {
      const std::string type = (*m)->mod_type;
      std::vector<std::string> values;
      if (((*m)->mod_op & LDAP_MOD_BVALUES) != 0 && (*m)->mod_bvalues != nullptr) {
        for (berval** v = (*m)->mod_bvalues; *v != nullptr; ++v)
          values.emplace_back((*v)->bv_val, (*v)->bv_len);
      }
      if (iequals(type, schema_.mail)) e.mail = values;
      if (iequals(type, schema_.forward)) e.forward = values;
      if (iequals(type, schema_.member)) e.member = values;
      if (iequals(type, schema_.uid) && !values.empty()) e.uid = values.front();
      if (iequals(type, schema_.lock) && !values.empty()) e.locked = iequals(values.front(), "true");
      if (iequals(type, "cn")) cn = values;
    }
    const std::string ndn = normalize_dn(e.dn);
    if (by_dn_.count(ndn) != 0) {
      throw std::runtime_error(file.string() + ":" + std::to_string(record_line) + ": duplicate entry " +
                               e.dn);
    }
    const std::size_t index = entries_.size();
    by_dn_.emplace(ndn, index);
    if (under(ndn, user_base)) {
      e.is_user = true;  // the LDIF directory finds users by mail alone
      for (const auto& m : e.mail) users_by_mail_.emplace(ascii_lower(m), index);
    }
    if (under(ndn, group_base)) {
      for (const auto& c : cn) groups_by_cn_.emplace(ascii_lower(c), index);
    }
    entries_.push_back(std::make_shared<const Entry>(std::move(e)));
  }
}

Lookup<EntryPtr> LdifDirectory::unique(const std::unordered_multimap<std::string, std::size_t>& index,
                                       const std::string& key, std::string_view what) const {
  const auto [first, last] = index.equal_range(key);
  if (first == last) return Lookup<EntryPtr>::not_found();
  if (std::next(first) != last) {
    return Lookup<EntryPtr>::trouble(Trouble::configuration("several entries match " + std::string(what)));
  }
  return Lookup<EntryPtr>::found(entries_[first->second]);
}

Lookup<EntryPtr> LdifDirectory::user_by_mail(std::string_view address) {
  return unique(users_by_mail_, ascii_lower(address), address);
}

Lookup<EntryPtr> LdifDirectory::group_by_name(std::string_view name) {
  return unique(groups_by_cn_, ascii_lower(name), name);
}

Lookup<EntryPtr> LdifDirectory::entry_by_dn(std::string_view dn) {
  const auto it = by_dn_.find(normalize_dn(dn));
  return it == by_dn_.end() ? Lookup<EntryPtr>::not_found() : Lookup<EntryPtr>::found(entries_[it->second]);
}

}  // namespace chainmail
