// dmarc.h - DMARC evaluation (RFC 7489) on libopendmarc 1.4.2, with policy records fetched through the one
// DNS layer (dns::Resolver).
//
//   dmarc::Evaluator dmarc(resolver, {});           // once per process, before threads
//   dmarc::Evaluation e = dmarc.evaluate({client_ip, from_domain, {mail_from_domain, "pass"},
//                                         {{"example.org", "pass"}}});   // any thread
//
// Record discovery (RFC 7489 6.6.3): TXT at _dmarc.<From domain>; TXT strings that do not start with
// "v=DMARC1" are discarded; when none is left, TXT at _dmarc.<organizational domain> (if different). Several
// DMARC records at the name that answered -> no policy (Result::none; RFC 7489 6.6.3 step 5). Nothing found
// -> Result::none. DNS trouble (dns::Answer trouble, or TXT rdata that does not decode) -> Result::temperror,
// never "no record"; the milter decides whether that tempfails (milter.tempfail_on_dns_error).
//
// Malformed records (RFC 7489 6.3 and 6.6.3 step 6): unknown tags are ignored; a bad adkim, aspf or pct is
// replaced by its default; a missing or invalid p= (or an invalid sp=) makes the record act as "p=none" when
// it has a syntactically valid rua= URI (evaluation goes on, policy none), and otherwise means no DMARC
// processing, reported as Result::permerror (RFC 8601 2.7.3: "a syntactically incorrect DMARC record") with
// Policy::none - it is never enforced.
//
// Results (RFC 8601 dmarc words): pass = an SPF or DKIM pass whose domain aligns with the From domain (per
// aspf/adkim); fail = a record exists and nothing aligned passed; none / temperror / permerror as above.
// One refinement keeps DNS trouble from becoming a verdict: when the message would fail under p=quarantine
// or p=reject, and the SPF result or a DKIM result with an aligned domain is "temperror", the result is
// temperror (policy kept), because that check might have passed.
//
// pct= (RFC 7489 6.6.4): a failing message not sampled (roll >= pct) gets the next less strict policy
// (reject -> quarantine -> none). The roll comes from the constructor's PctRoll, so tests are deterministic.
//
// How libopendmarc is driven, and why (read from its 1.4.2 sources, libopendmarc/opendmarc_policy.c):
// - opendmarc_policy_library_init() loads the public suffix list into process-global state; it runs once,
//   for the first Evaluator; later Evaluators must name the same file (else std::runtime_error) and the
//   last one destroyed calls opendmarc_policy_library_shutdown().
// - Per evaluation: connect_init, store_from_domain, store_spf, store_dkim, store_dmarc, then
//   opendmarc_get_policy_to_enforce, fetch_alignment, fetch_p/sp/pct, connect_shutdown (RAII). None of these
//   makes a DNS query; opendmarc_policy_query_dmarc() and fetch_rua()/fetch_ruf() with a buffer would (the
//   blocking res_nquery resolver), and are never called.
// - The record handed to store_dmarc is rebuilt by us from the tags that matter (v, p, sp, adkim, aspf, pct):
//   libopendmarc's own parser rejects records RFC 7489 says to accept with defaults, and its "rf=iodef"
//   handling sets the aspf field (so aspf would silently become strict).
// - Only passing DKIM results are stored, exact From-domain matches first: store_dkim keeps one "best"
//   signature, and in 1.4.2 a later aligned signature that failed can erase an earlier aligned pass.
// - Under aspf=s / adkim=s only a domain equal to the From domain is stored: 1.4.2's strict check lets
//   d=sub.example.org align with From example.org (OpenDMARC issue #268, fixed upstream after 1.4.2).
// - Thread safety: each evaluation has its own context; the only shared state is the suffix table, which
//   libopendmarc reads under its own mutex. evaluate() is safe from any number of threads.
// - Known limits inherited from libopendmarc's suffix matching: a wildcard rule "*.ck" is treated like "ck"
//   (so the organizational domain of a.b.ck is b.ck, not a.b.ck), and relaxed alignment between two
//   subdomains under a suffix the list does not know fails. organizational_domain() adds RFC 7489's
//   default rule (the last two labels) for names the list does not cover, for record discovery.
//
// SECURITY: every input is attacker-influenced (From domain, MAIL FROM, DKIM d=). Domains are lower-cased
// and must be ASCII host names of at most 253 octets with labels of at most 63, or they are not used (an
// invalid From domain is permerror). TXT strings are bounded by the resolver; a record longer than
// kMaxRecord octets is treated as malformed. Reasons never quote record text.
// DIAGNOSTICS: Evaluation::reason, e.g. "p=reject; no aligned SPF or DKIM pass", fit for a log line and the
// text of a 550 reply. The constructor throws std::runtime_error when the suffix list cannot be loaded or
// does not look like one; evaluate() does not throw except std::bad_alloc.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/dns/resolver.h"

namespace chainmail::dmarc {

inline constexpr std::size_t kMaxRecord = 4096;

enum class Result { none, pass, fail, temperror, permerror };  // RFC 8601 dmarc results
std::string_view to_string(Result result);
enum class Policy { none, quarantine, reject };
std::string_view to_string(Policy policy);

struct SpfInput {  // MAIL FROM domain (or HELO when MAIL FROM is null) and its RFC 8601 result word
  std::string domain;
  std::string result;
};
struct DkimInput {  // d= and result word of each signature
  std::string domain;
  std::string result;
};
struct Input {
  std::string client_ip;
  std::string header_from_domain;  // the From: header's domain (caller has ensured exactly one From address)
  SpfInput spf;
  std::vector<DkimInput> dkim;
};

struct Evaluation {
  Result result = Result::none;
  // The published policy that governs this message: p=, or sp= when the record came from the organizational
  // domain of a subdomain (p= when sp= is absent); after pct= sampling when the result is fail. Policy::none
  // when there is no usable record (none, permerror, temperror from DNS).
  Policy policy = Policy::none;
  std::string domain;         // header.from, lower case
  std::string policy_domain;  // where the record was found (the From domain or its organizational domain)
  bool spf_aligned = false, dkim_aligned = false;  // an aligned pass (evaluated only when a record was found)
  std::string reason;  // short text for logs and the 550 reply, e.g. "p=reject; no aligned SPF or DKIM pass"
};

struct Options {
  std::string public_suffix_list = "/usr/share/publicsuffix/effective_tld_names.dat";
};

// pct= sampling: returns a number in [0, 100); a failing message is sampled when it is below pct. Called
// from many threads at once. Empty: a per-thread pseudo-random generator seeded from std::random_device.
using PctRoll = std::function<unsigned()>;

class Evaluator {
 public:
  // Once per process, before threads; throws std::runtime_error when the PSL cannot be loaded.
  Evaluator(dns::Resolver& resolver, Options options, PctRoll pct_roll = {});
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  Evaluation evaluate(const Input& input) const;  // thread-safe

  // The organizational domain of a name (public suffix list, RFC 7489 3.2), lower case. A name that is not
  // a valid host name comes back lower-cased and otherwise unchanged.
  std::string organizational_domain(std::string_view domain) const;

 private:
  dns::Resolver& resolver_;
  Options options_;
  PctRoll pct_roll_;
};

}  // namespace chainmail::dmarc
