// from_header.cc - see from_header.h.
#include "adapters/mime/from_header.h"

#include <gmime/gmime.h>

#include <memory>
#include <mutex>

namespace chainmail {
namespace {

struct UnrefObject {
  void operator()(void* p) const { g_object_unref(p); }
};
using AddressList = std::unique_ptr<InternetAddressList, UnrefObject>;

void collect(InternetAddressList* list, std::vector<AuthorAddress>& out, int depth) {
  if (list == nullptr || depth > 4) return;  // groups cannot nest (RFC 5322), but the parser may be lenient
  const int n = internet_address_list_length(list);
  for (int i = 0; i < n; ++i) {
    InternetAddress* a = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_GROUP(a)) {
      collect(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), out, depth + 1);
      continue;
    }
    if (!INTERNET_ADDRESS_IS_MAILBOX(a)) continue;
    const char* addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
    if (addr == nullptr || *addr == '\0') continue;
    AuthorAddress author{addr, {}};
    const auto at = author.address.rfind('@');
    if (at != std::string::npos) author.domain = author.address.substr(at + 1);
    out.push_back(std::move(author));
  }
}

}  // namespace

void init_mime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

std::vector<AuthorAddress> parse_from(std::string_view value) {
  std::vector<AuthorAddress> out;
  const std::string text(value);
  AddressList list(internet_address_list_parse(nullptr, text.c_str()));
  collect(list.get(), out, 0);
  return out;
}

}  // namespace chainmail
