// spf_checker.h - SPF (RFC 7208) check_host() for the MAIL FROM and HELO identities, on libspf2.
//
//   dns::UnboundResolver resolver(...);
//   spf::Checker checker(resolver, {.receiver = "mx.example.org"});
//   spf::Verdict v = checker.check_mail_from("192.0.2.1", "mail.example.com", "alice@example.com");
//   // v.result: pass / fail / ...; to_string(v.result) is the RFC 8601 word for Authentication-Results.
//
// libspf2 evaluates the record; everything it does not do as RFC 7208 says is done around it, in this layer:
//   - DNS goes through dns::Resolver (a custom libspf2 DNS layer); TXT records only (the SPF type is gone).
//   - Record selection (4.5) and a strict syntax check of the whole record against the RFC 7208 ABNF (4.6,
//     7.1, 12): libspf2 accepts some invalid records and rejects some valid ones. CIDR lengths of /0, which
//     libspf2 cannot represent, are rewritten into equivalent terms.
//   - Limits (4.6.4): at most max_dns_mechanisms DNS-querying terms in the whole evaluation, including
//     nested includes; more than 10 MX names is permerror; only the first 10 PTR names are used; at most
//     max_void_lookups lookups that answer NXDOMAIN or no data.
//   - ptr (5.5): a DNS error on the PTR lookup or on one name's address lookup skips it instead of temperror.
//   - Initial processing (4.3): a malformed or single-label domain is "none"; an IPv4-mapped IPv6 client
//     address is IPv4; no free pass for loopback clients; names over 253 characters are cut from the left.
//   - exp= (6.2): ignored unless exactly one TXT record of valid, ASCII explanation text answers; the text is
//     expanded here (libspf2 cannot parse spaces in it and escapes differently).
// The RFC 7208 suite passes in full (spf_suite_test.cc). Known libspf2 limits left, all outside the suite and
// rare in published records: the macro delimiters ',' and '/' and a part count over 128 (%{d200}) are refused
// (permerror); upper-case macros in mechanism domains leave ! * ' ( ) unescaped; the %{p} PTR lookup is not
// counted as a DNS-querying term; a term over libspf2's size limits (511 bytes compiled) is refused.
//
// Thread safety: a Checker is immutable after construction; every check builds its own libspf2 request and
// DNS-layer state, so any number of threads may check at once. The resolver must be thread-safe.
//
// SECURITY: records, explanations and the names they point to come from the sender's DNS and are bounded:
// the limits above, a 253-character name limit, an explanation cut at 255 printable ASCII characters.
//
// DIAGNOSTICS: Verdict::comment says why (the record's error, the DNS trouble, the limit hit), for the log
// and the header comment. libspf2's own assertion failures (out of memory) end that one check as temperror
// instead of aborting the process (what libspf2 had allocated for it is leaked); its warnings are dropped.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "adapters/dns/resolver.h"

struct SPF_server_struct;

namespace chainmail::spf {

enum class Result { none, neutral, pass, fail, softfail, temperror, permerror };

// RFC 8601 words: "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror".
std::string_view to_string(Result result);

struct Options {
  int max_dns_mechanisms = 10;  // RFC 7208 4.6.4
  int max_void_lookups = 2;     // RFC 7208 4.6.4, which libspf2 lacks: enforced in the DNS bridge
  std::string receiver;         // our host name, for %{r} in explanations; empty: gethostname()
};

struct Verdict {
  Result result = Result::none;
  std::string domain;       // the domain checked (MAIL FROM's domain, or HELO)
  std::string explanation;  // for fail, when the domain published one
  std::string comment;      // short human text for logs / header comment
};

class Checker {
 public:
  // Throws std::runtime_error if libspf2 cannot be set up.
  Checker(dns::Resolver& resolver, Options options);
  ~Checker();

  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  // RFC 7208 check_host for MAIL FROM. `sender` empty (null reverse-path) -> checks postmaster@helo.
  // `ip` is textual IPv4 or IPv6.
  Verdict check_mail_from(std::string_view ip, std::string_view helo, std::string_view sender) const;
  Verdict check_helo(std::string_view ip, std::string_view helo) const;

 private:
  struct ServerDeleter {
    void operator()(SPF_server_struct* server) const;
  };

  Verdict check(std::string_view ip, std::string_view helo, std::string_view sender,
                bool helo_identity) const;

  dns::Resolver& resolver_;
  Options options_;
  // Configured once, then only read: each check runs on a shallow copy pointing at its own DNS layer.
  std::unique_ptr<SPF_server_struct, ServerDeleter> server_;
};

}  // namespace chainmail::spf
