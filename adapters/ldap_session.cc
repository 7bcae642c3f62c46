// ldap_session.cc - see ldap_session.h.
#include "adapters/ldap_session.h"

#include <algorithm>
#include <csignal>

namespace chainmail::ldap_session {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

namespace {
struct ValuesFree {
  void operator()(berval** v) const { ldap_value_free_len(v); }
};
}  // namespace

std::vector<std::string> values_of(LDAP* ld, LDAPMessage* entry, const std::string& attr) {
  std::vector<std::string> out;
  if (attr.empty()) return out;
  const std::unique_ptr<berval*, ValuesFree> vals(ldap_get_values_len(ld, entry, attr.c_str()));
  if (!vals) return out;
  for (berval** v = vals.get(); *v != nullptr; ++v) out.emplace_back((*v)->bv_val, (*v)->bv_len);
  return out;
}

void ignore_sigpipe() {
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, nullptr);
  }
}

LDAP* open(const std::string& uri, const LdapOptions& options, std::string& why) {
  LDAP* ld = nullptr;
  int rc = ldap_initialize(&ld, uri.c_str());
  if (rc != LDAP_SUCCESS) {
    why = ldap_err2string(rc);
    return nullptr;
  }
  const int version = LDAP_VERSION3;
  const timeval net = to_timeval(options.connect_timeout);
  const timeval op = to_timeval(options.search_timeout);
  ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
  ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &net);
  ldap_set_option(ld, LDAP_OPT_TIMEOUT, &op);  // bounds every synchronous call (search, bind)
  ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  // Without CONNECT_ASYNC, libldap 2.5's TLS handshake retries a non-blocking read forever against a
  // server that accepted the connection and went silent (upstream ITS#8047, fixed in 2.6.10): the network
  // timeout only bounds the handshake when the connect is asynchronous.
  ldap_set_option(ld, LDAP_OPT_CONNECT_ASYNC, LDAP_OPT_ON);
  if (!options.ca_file.empty() || options.starttls || uri.rfind("ldaps://", 0) == 0) {
    const int demand = LDAP_OPT_X_TLS_DEMAND;
    const int new_ctx = 0;
    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
    if (!options.ca_file.empty()) ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, options.ca_file.c_str());
    ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &new_ctx);
  }
  if (options.starttls && uri.rfind("ldap://", 0) == 0) {
    rc = ldap_start_tls_s(ld, nullptr, nullptr);
    if (rc != LDAP_SUCCESS) {
      why = std::string("StartTLS: ") + ldap_err2string(rc);
      ldap_unbind_ext_s(ld, nullptr, nullptr);
      return nullptr;
    }
  }
  return ld;
}

int simple_bind(LDAP* ld, const std::string& dn, std::string_view password) {
  std::string secret(password);  // libldap's berval wants a mutable pointer
  berval cred{};
  cred.bv_val = secret.data();
  cred.bv_len = secret.size();
  const int rc = ldap_sasl_bind_s(ld, dn.empty() ? nullptr : dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr,
                                  nullptr, nullptr);
  std::fill(secret.begin(), secret.end(), '\0');  // the copy does not outlive the bind
  return rc;
}

}  // namespace chainmail::ldap_session
