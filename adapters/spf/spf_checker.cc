// spf_checker.cc - see spf_checker.h.
//
// How a check runs:
//   1. check() validates the identity (4.3), fetches and checks the top-level record itself
//   (record_syntax.h),
//      and builds a libspf2 request on a shallow copy of the shared SPF_server_t whose `resolver` is a DNS
//      layer private to this check (its `hook` is the CheckState).
//   2. libspf2 (SPF_record_interpret) evaluates. Every DNS question comes back to us: lookup_hook() for
//      A/AAAA/MX/PTR/TXT, get_spf_hook() for the records of include: and redirect= targets.
//   3. The hooks count DNS-querying terms and void lookups for the whole evaluation (libspf2 counts per
//      include level and has no void limit). Going over a limit records a permerror in the CheckState and
//      answers TRY_AGAIN, which makes libspf2 stop at once at every call site; check() then reports
//      permerror.
//
// Which term a lookup belongs to, as libspf2 (1.2.10, spf_interpret.c / spf_dns.c) asks them:
//   MX                          the mx mechanism
//   PTR, should_cache           the ptr mechanism           PTR, !should_cache   %{p}
//   (SPF_dns_get_client_dom) A/AAAA of a name just listed by that MX or PTR answer   address of an MX/PTR
//   name (not a term of its own) A/AAAA, should_cache        the a mechanism             A, !should_cache
//   exists TXT                         an exp= explanation (records for include/redirect come through
//   get_spf_hook)
// The names an MX/PTR answer listed are remembered in order; libspf2 asks for their addresses right after.
//
// libspf2's error handler (SPF_error: its assertions and out-of-memory paths) is followed by abort() inside
// libspf2 whatever the handler does. on_spf_error() therefore leaves with siglongjmp() to the check running
// on this thread, which answers temperror; what that check had allocated inside libspf2 is leaked. Jumping
// over a C++ frame is only defined when no object with a destructor is alive in it, so every place where
// libspf2 can reach SPF_error is entered from a frame without such objects (run_libspf2(), get_spf_hook()).
#include "adapters/spf/spf_checker.h"

// libspf2's headers need these first and have no extern "C" of their own.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
extern "C" {
#include <spf2/spf.h>
#include <spf2/spf_dns.h>
}

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "adapters/dns/rdata.h"
#include "adapters/spf/record_syntax.h"

namespace chainmail::spf {
namespace {

using dns::Answer;
using dns::RrType;

constexpr std::size_t kMaxName = 253;     // RFC 7208 7.3: longer expansions are cut from the left
constexpr std::size_t kMaxMxNames = 10;   // 4.6.4: more MX names is permerror
constexpr std::size_t kMaxPtrNames = 10;  // 4.6.4: further PTR names are ignored
constexpr std::size_t kMaxExplanation = SPF_MAX_STR_LEN;  // 255: one libspf2 string literal

// ---- libspf2's error handler ------------------------------------------------------------------------------

struct Guard {
  sigjmp_buf env;
  char message[256] = {};
};

thread_local Guard* t_guard = nullptr;

// GNU noreturn, not [[noreturn]]: libspf2 declares the pointer so, and clang makes it part of the type.
__attribute__((noreturn)) void on_spf_error(const char* file, int line, const char* message) {
  if (Guard* g = t_guard; g != nullptr) {
    t_guard = nullptr;
    std::snprintf(g->message, sizeof g->message, "%s:%d: %s", file != nullptr ? file : "libspf2", line,
                  message != nullptr ? message : "");
    siglongjmp(g->env, 1);
  }
  // Outside a check (setting up the shared server): nothing to return to.
  std::fprintf(stderr, "chainmail spf: libspf2 error outside a check: %s:%d: %s\n",
               file != nullptr ? file : "?", line, message != nullptr ? message : "");
  std::abort();
}

void install_libspf2_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    SPF_error_handler = on_spf_error;
    // Warnings are about records we already judged; info/debug only with SPF debugging on. Drop them.
    SPF_warning_handler = nullptr;
    SPF_info_handler = nullptr;
    SPF_debug_handler = nullptr;
  });
}

// ---- names ------------------------------------------------------------------------------------------------

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iends_with(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (std::size_t i = 0; i < suffix.size(); ++i) {
    if (lower(s[s.size() - suffix.size() + i]) != lower(suffix[i])) return false;
  }
  return true;
}

// A name as libspf2 built it, made ready for a query: trailing dot dropped, cut from the left to 253
// characters by whole labels (7.3). Empty when no query can be composed (an empty or over-long label): such a
// name cannot exist, and the term simply does not match (4.3, 4.8).
std::string query_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  while (name.size() > kMaxName) {
    const auto dot = name.find('.');
    if (dot == std::string_view::npos) return {};
    name.remove_prefix(dot + 1);
  }
  if (name.empty()) return {};
  std::size_t label = 0;
  for (const char c : name) {
    if (c == '.') {
      if (label == 0) return {};
      label = 0;
    } else if (++label > 63) {
      return {};
    }
  }
  if (label == 0) return {};
  return std::string(name);
}

// 4.3: the domain check_host() starts from must be a multi-label domain name, not a literal.
bool valid_identity_domain(std::string_view domain) {
  if (domain.empty() || domain.front() == '[') return false;
  if (domain.back() == '.') domain.remove_suffix(1);
  if (domain.empty() || domain.size() > kMaxName || domain.find('.') == std::string_view::npos) return false;
  std::size_t label = 0;
  for (const char c : domain) {
    if (c <= 0x20 || c > 0x7e) return false;
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (++label > 63) {
      return false;
    }
  }
  return label != 0;
}

// For logs and comments: printable ASCII only, bounded.
std::string printable(std::string_view s, std::size_t max) {
  std::string out;
  for (const char c : s.substr(0, max)) out += (c >= 0x20 && c <= 0x7e) ? c : '?';
  return out;
}

// ---- per-check state --------------------------------------------------------------------------------------

struct Expected {  // an address lookup libspf2 is about to make for a name an MX/PTR answer listed
  enum class Kind { mx, ptr, client_name };
  std::string name;  // as handed to libspf2 (with kAnyAddressSuffix when the mx term was /0)
  Kind kind;
};

struct CheckState {
  CheckState(dns::Resolver& r, const Options& o) : resolver(r), options(o) {}

  dns::Resolver& resolver;
  const Options& options;
  bool ipv6 = false;
  in_addr ip4{};
  in6_addr ip6{};

  int dns_terms = 0;
  int void_lookups = 0;
  std::string permerror;   // set when a limit stopped the evaluation
  std::string trouble;     // the DNS trouble that made libspf2 answer temperror
  std::string bad_record;  // why an include/redirect target's record was refused
  std::deque<Expected> expected;

  SPF_request_t* request = nullptr;
  std::string record_text;  // for SPF_record_compile; here, so the hooks' frames hold no objects
  SPF_response_t* response = nullptr;
  SPF_record_t* record = nullptr;
  SPF_errcode_t compile_error = SPF_E_SUCCESS;
  Guard guard;
};

CheckState& state_of(SPF_dns_server_t* layer) {
  return *static_cast<CheckState*>(layer->hook);
}

// Counts one DNS-querying term (4.6.4). False when that is one too many (the evaluation is then stopped).
bool count_term(CheckState& st) {
  if (!st.permerror.empty()) return false;
  st.expected.clear();
  if (++st.dns_terms > st.options.max_dns_mechanisms) {
    st.permerror = "more than ";  // piecewise: GCC 12 -Wrestrict false positive on "lit" + to_string()
    st.permerror += std::to_string(st.options.max_dns_mechanisms);
    st.permerror += " DNS-querying terms";
    return false;
  }
  return true;
}

// False when this void lookup is one too many.
bool count_void(CheckState& st) {
  if (++st.void_lookups > st.options.max_void_lookups) {
    st.permerror = "more than ";
    st.permerror += std::to_string(st.options.max_void_lookups);
    st.permerror += " void DNS lookups";
    return false;
  }
  return true;
}

Answer ask(CheckState& st, const std::string& name, RrType type) {
  try {
    return st.resolver.resolve(name, type);
  } catch (const std::exception& e) {
    Answer a;
    a.why = e.what();
    return a;
  } catch (...) {
    return Answer{};  // trouble
  }
}

// ---- building libspf2's answers ---------------------------------------------------------------------------

// The answer libspf2 gets. Never returns null except when memory runs out (libspf2 then calls SPF_error).
SPF_dns_rr_t* make_rr(SPF_dns_server_t* layer, const char* domain, ns_type type, int herrno) {
  return SPF_dns_rr_new_init(layer, domain, type, 0, herrno);
}

bool add_rr_bytes(SPF_dns_rr_t* rr, const void* data, std::size_t size) {
  const int i = rr->num_rr;
  if (SPF_dns_rr_buf_realloc(rr, i, size) != SPF_E_SUCCESS) return false;
  std::memcpy(rr->rr[i], data, size);
  ++rr->num_rr;
  return true;
}

bool add_rr_text(SPF_dns_rr_t* rr, std::string_view text) {
  const int i = rr->num_rr;
  if (SPF_dns_rr_buf_realloc(rr, i, text.size() + 1) != SPF_E_SUCCESS) return false;
  char* out = reinterpret_cast<char*>(rr->rr[i]);
  std::memcpy(out, text.data(), text.size());
  out[text.size()] = '\0';
  ++rr->num_rr;
  return true;
}

SPF_dns_rr_t* fill_or_null(SPF_dns_rr_t* rr, bool ok) {
  if (ok) return rr;
  SPF_dns_rr_free(rr);
  return nullptr;
}

// The records of a found answer, decoded for libspf2. Names come back without the trailing dot.
struct Decoded {
  bool ok = true;
  std::vector<std::string> items;  // names (MX, PTR) or text (TXT); addresses stay in Answer::records
};

Decoded decode(const Answer& a, RrType type) {
  Decoded d;
  for (const auto& r : a.records) {
    std::optional<std::string> item;
    if (type == RrType::mx) {
      if (auto mx = dns::decode_mx(r)) item = std::move(mx->exchange);
    } else if (type == RrType::ptr) {
      item = dns::decode_name(r);
    } else if (type == RrType::txt) {
      item = dns::decode_txt(r);
    } else if ((type == RrType::a && r.size() == 4) || (type == RrType::aaaa && r.size() == 16)) {
      item = std::string();
    }
    if (!item) {
      d.ok = false;  // a malformed answer is the server's trouble, not an answer
      return d;
    }
    d.items.push_back(std::move(*item));
  }
  return d;
}

// ---- explanations -----------------------------------------------------------------------------------------

std::string reverse_name(const CheckState& st) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name;
  if (st.ipv6) {
    for (int i = 15; i >= 0; --i) {
      name += kHex[st.ip6.s6_addr[i] & 0xf];
      name += '.';
      name += kHex[st.ip6.s6_addr[i] >> 4];
      name += '.';
    }
    return name + "ip6.arpa";
  }
  const auto* b = reinterpret_cast<const unsigned char*>(&st.ip4);
  for (int i = 3; i >= 0; --i) {
    name += std::to_string(b[i]);
    name += '.';
  }
  return name + "in-addr.arpa";
}

// %{p} (7.3): a name the client's PTR records give that resolves back to the client; one equal to or below
// `domain` if there is one. DNS errors skip a name. These lookups are not terms (no limits apply beyond 10
// names).
std::string validated_client_name(CheckState& st, std::string_view domain) {
  const Answer ptr = ask(st, reverse_name(st), RrType::ptr);
  if (!ptr.found()) return "unknown";
  std::string first;
  std::size_t tried = 0;
  for (const auto& rdata : ptr.records) {
    if (tried++ == kMaxPtrNames) break;
    const auto name = dns::decode_name(rdata);
    if (!name || query_name(*name).empty()) continue;
    const Answer addr = ask(st, *name, st.ipv6 ? RrType::aaaa : RrType::a);
    bool matches = false;
    for (const auto& a : addr.records) {
      matches = matches || (st.ipv6 ? (a.size() == 16 && std::memcmp(a.data(), &st.ip6, 16) == 0)
                                    : (a.size() == 4 && std::memcmp(a.data(), &st.ip4, 4) == 0));
    }
    if (!addr.found() || !matches) continue;
    const bool below = name->size() >= domain.size() && iends_with(*name, domain) &&
                       (name->size() == domain.size() || (*name)[name->size() - domain.size() - 1] == '.');
    if (below) return *name;
    if (first.empty()) first = *name;
  }
  return first.empty() ? "unknown" : first;
}

// The explanation, expanded by us (record_syntax.h says why), then written so that libspf2's own expansion of
// it gives back exactly that text: '%' as "%%", ' ' as "%_", no more than one string literal (255).
std::string explanation_for_libspf2(CheckState& st, std::string_view text) {
  const SPF_request_t* r = st.request;
  auto str = [](const char* p) { return std::string(p != nullptr ? p : ""); };
  MacroValues values;
  values.sender = str(r->env_from);
  values.local_part = str(r->env_from_lp);
  values.sender_domain = str(r->env_from_dp);
  values.domain = str(r->cur_dom);
  values.helo = str(r->helo_dom);
  values.receiver = str(r->spf_server->rec_dom);
  values.time = std::to_string(static_cast<long long>(std::time(nullptr)));
  values.ip_version = st.ipv6 ? "ip6" : "in-addr";
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(st.ipv6 ? AF_INET6 : AF_INET, st.ipv6 ? static_cast<const void*>(&st.ip6) : &st.ip4, buf,
            sizeof buf);
  values.ip_pretty = buf;
  if (st.ipv6) {
    static constexpr char kHex[] = "0123456789ABCDEF";  // as the RFC 7208 suite's reference (pyspf) writes it
    for (int i = 0; i < 16; ++i) {
      if (i > 0) values.ip += '.';
      values.ip += kHex[st.ip6.s6_addr[i] >> 4];
      values.ip += '.';
      values.ip += kHex[st.ip6.s6_addr[i] & 0xf];
    }
  } else {
    values.ip = buf;
  }
  values.validated_name = [&st, &values] { return validated_client_name(st, values.domain); };
  const std::string expanded = expand_explanation(text, values, kMaxExplanation);
  std::string escaped;
  for (const char c : expanded) {
    if (c == '%') {
      escaped += "%%";
    } else if (c == ' ') {
      escaped += "%_";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

// ---- the DNS layer ----------------------------------------------------------------------------------------

SPF_dns_rr_t* lookup(CheckState& st, SPF_dns_server_t* layer, const char* domain, ns_type ns,
                     bool should_cache) {
  const auto type = static_cast<RrType>(ns);
  std::string_view name(domain != nullptr ? domain : "");

  // Which term is asking (see the table at the top of this file)?
  enum class Role {
    term,
    address_of_listed,
    ptr_term,
    client_name_ptr,
    explanation,
    other
  } role = Role::other;
  Expected::Kind listed_kind = Expected::Kind::mx;
  const bool address = type == RrType::a || type == RrType::aaaa;
  if (address && !st.expected.empty() && st.expected.front().name == name) {
    role = Role::address_of_listed;
    listed_kind = st.expected.front().kind;
    st.expected.pop_front();
  } else if (type == RrType::mx || (address && (should_cache || type == RrType::a))) {
    role = Role::term;
  } else if (type == RrType::ptr) {
    role = should_cache ? Role::ptr_term : Role::client_name_ptr;
  } else if (type == RrType::txt) {
    role = Role::explanation;
  }
  // Anything but the address of a listed name abandons the names still expected (a match ended that term).
  if (role != Role::address_of_listed) st.expected.clear();
  const bool counted = role == Role::term || role == Role::ptr_term;
  if (counted && !count_term(st)) return make_rr(layer, domain, ns, TRY_AGAIN);

  // "/0" terms (record_syntax.h): the name carries the marker, the question is about the name without it.
  const bool any_address = iends_with(name, kAnyAddressSuffix);
  if (any_address) name.remove_suffix(kAnyAddressSuffix.size());
  const std::string qname = query_name(name);
  if (qname.empty()) return make_rr(layer, domain, ns, HOST_NOT_FOUND);  // cannot exist; not a void lookup

  const Answer answer = ask(st, qname, type);
  Decoded decoded;
  if (answer.found()) decoded = decode(answer, type);
  if (answer.trouble() || !decoded.ok) {
    // 5.5: DNS errors while looking at PTR names only skip them. Everything else is temperror.
    if (role == Role::ptr_term || role == Role::client_name_ptr ||
        (role == Role::address_of_listed && listed_kind != Expected::Kind::mx)) {
      return make_rr(layer, domain, ns, NO_DATA);
    }
    if (role != Role::explanation && st.trouble.empty()) {
      st.trouble =
          printable(qname, 100) + ": " + (answer.trouble() ? printable(answer.why, 200) : "malformed answer");
    }
    return make_rr(layer, domain, ns, TRY_AGAIN);
  }
  if (!answer.found()) {
    if (counted && !count_void(st)) return make_rr(layer, domain, ns, TRY_AGAIN);
    return make_rr(layer, domain, ns, answer.status == Answer::Status::nxdomain ? HOST_NOT_FOUND : NO_DATA);
  }

  SPF_dns_rr_t* rr = make_rr(layer, domain, ns, NETDB_SUCCESS);
  if (rr == nullptr) return nullptr;
  bool ok = true;
  switch (type) {
    case RrType::a:
    case RrType::aaaa:
      if (any_address) {
        // "Has any address of the client's family" matches the client itself.
        ok = st.ipv6 ? add_rr_bytes(rr, &st.ip6, sizeof st.ip6) : add_rr_bytes(rr, &st.ip4, sizeof st.ip4);
      } else {
        for (const auto& r : answer.records) ok = ok && add_rr_bytes(rr, r.data(), r.size());
      }
      break;
    case RrType::mx: {
      if (decoded.items.size() > kMaxMxNames) {
        SPF_dns_rr_free(rr);
        st.permerror = "more than 10 MX names for " + printable(qname, 100);
        return make_rr(layer, domain, ns, TRY_AGAIN);
      }
      for (auto& exchange : decoded.items) {
        if (any_address) exchange += kAnyAddressSuffix;
        ok = ok && add_rr_text(rr, exchange);
        st.expected.push_back({exchange, Expected::Kind::mx});
      }
      break;
    }
    case RrType::ptr: {
      if (decoded.items.size() > kMaxPtrNames) decoded.items.resize(kMaxPtrNames);
      const auto kind = role == Role::ptr_term ? Expected::Kind::ptr : Expected::Kind::client_name;
      for (const auto& ptr : decoded.items) {
        ok = ok && add_rr_text(rr, ptr);
        st.expected.push_back({ptr, kind});
      }
      break;
    }
    case RrType::txt: {
      // 6.2: exactly one record of valid explanation text, or the exp= modifier is ignored.
      if (decoded.items.size() != 1 || !valid_explanation(decoded.items.front()) || st.request == nullptr) {
        SPF_dns_rr_free(rr);
        return make_rr(layer, domain, ns, NO_DATA);
      }
      ok = add_rr_text(rr, explanation_for_libspf2(st, decoded.items.front()));
      break;
    }
    default:
      break;
  }
  return fill_or_null(rr, ok);
}

SPF_dns_rr_t* lookup_hook(SPF_dns_server_t* layer, const char* domain, ns_type ns,
                          int should_cache) noexcept {
  CheckState& st = state_of(layer);
  try {
    return lookup(st, layer, domain, ns, should_cache != 0);
  } catch (...) {
    // Only bad_alloc can get here. TRY_AGAIN is temperror: the check cannot be trusted.
    if (st.trouble.empty()) st.trouble = "out of memory";
    return make_rr(layer, domain, ns, TRY_AGAIN);
  }
}

// ---- records ----------------------------------------------------------------------------------------------

struct Fetched {
  enum class Status { found, none, trouble, permerror } status = Status::trouble;
  std::string text;  // found: the record for libspf2; otherwise why
};

// 4.4 and 4.5: the TXT records of `domain`; exactly one must be a v=spf1 record, and it must be valid.
Fetched fetch_record(CheckState& st, std::string_view domain) {
  Fetched f;
  const std::string qname = query_name(domain);
  if (qname.empty() || !valid_identity_domain(qname)) {
    f.status = Fetched::Status::none;
    f.text = "not a valid domain name";
    return f;
  }
  const Answer answer = ask(st, qname, RrType::txt);
  if (answer.trouble()) {
    f.text = "TXT " + printable(qname, 100) + ": " + printable(answer.why, 200);
    return f;
  }
  std::vector<std::string> spf;
  if (answer.found()) {
    const Decoded decoded = decode(answer, RrType::txt);
    if (!decoded.ok) {
      f.text = "TXT " + printable(qname, 100) + ": malformed answer";
      return f;
    }
    for (const auto& txt : decoded.items) {
      if (is_spf_record(txt)) spf.push_back(txt);
    }
  }
  if (spf.empty()) {
    f.status = Fetched::Status::none;
    f.text = "no SPF record";
    return f;
  }
  if (spf.size() > 1) {
    f.status = Fetched::Status::permerror;
    f.text = "more than one SPF record";
    return f;
  }
  RecordCheck check = check_record(spf.front(), st.ipv6);
  if (!check.ok) {
    f.status = Fetched::Status::permerror;
    f.text = printable(check.error, 200);
    return f;
  }
  f.status = Fetched::Status::found;
  f.text = std::move(check.for_libspf2);
  return f;
}

// The C++ half of get_spf_hook(): everything that needs objects with destructors. The record to compile is
// left in st.record_text.
SPF_errcode_t prepare_target_record(CheckState& st, const char* domain) noexcept {
  try {
    if (!count_term(st)) return SPF_E_DNS_ERROR;  // stops the evaluation; check() reports the permerror
    Fetched f = fetch_record(st, domain != nullptr ? domain : "");
    switch (f.status) {
      case Fetched::Status::found:
        st.record_text = std::move(f.text);
        return SPF_E_SUCCESS;
      case Fetched::Status::none:  // include/redirect to a domain without a record: permerror (5.2, 6.1)
        st.bad_record = printable(domain != nullptr ? domain : "", 100) + ": " + f.text;
        return SPF_E_NOT_SPF;
      case Fetched::Status::permerror:
        st.bad_record = printable(domain != nullptr ? domain : "", 100) + ": " + f.text;
        return SPF_E_SYNTAX;
      case Fetched::Status::trouble:
        if (st.trouble.empty()) st.trouble = f.text;
        return SPF_E_DNS_ERROR;
    }
  } catch (...) {
    if (st.trouble.empty()) st.trouble = "out of memory";
  }
  return SPF_E_DNS_ERROR;
}

// libspf2 asks for the record of an include: or redirect= target (cur_dom). SPF_record_compile can reach
// SPF_error, so this frame holds no object with a destructor (see the file comment).
SPF_errcode_t get_spf_hook(SPF_server_t* server, SPF_request_t* request, SPF_response_t* response,
                           SPF_record_t** recordp) noexcept {
  CheckState& st = state_of(server->resolver);
  const SPF_errcode_t err = prepare_target_record(st, request->cur_dom);
  if (err != SPF_E_SUCCESS) return err;
  return SPF_record_compile(server, response, recordp, st.record_text.c_str());
}

// Compiles st.record_text and evaluates it. False when libspf2 hit SPF_error (st.guard.message says what).
// No object with a destructor may live in this frame: on_spf_error() jumps back into it.
bool run_libspf2(CheckState& st, SPF_server_t* server, SPF_request_t* request) noexcept {
  if (sigsetjmp(st.guard.env, 0) != 0) return false;
  t_guard = &st.guard;
  st.response = SPF_response_new(request);
  if (st.response == nullptr) {
    t_guard = nullptr;
    std::snprintf(st.guard.message, sizeof st.guard.message, "out of memory");
    return false;
  }
  st.compile_error = SPF_record_compile(server, st.response, &st.record, st.record_text.c_str());
  if (st.compile_error == SPF_E_SUCCESS) {
    st.response->spf_record_exp = st.record;
    SPF_record_interpret(st.record, request, st.response, 0);
  } else if (st.record != nullptr) {
    SPF_record_free(st.record);
    st.record = nullptr;
  }
  t_guard = nullptr;
  return true;
}

struct RequestDeleter {
  void operator()(SPF_request_t* r) const { SPF_request_free(r); }
};
struct ResponseDeleter {
  void operator()(SPF_response_t* r) const { SPF_response_free(r); }
};
struct RecordDeleter {
  void operator()(SPF_record_t* r) const { SPF_record_free(r); }
};

Result from_libspf2(SPF_result_t r) {
  switch (r) {
    case SPF_RESULT_PASS:
      return Result::pass;
    case SPF_RESULT_FAIL:
      return Result::fail;
    case SPF_RESULT_SOFTFAIL:
      return Result::softfail;
    case SPF_RESULT_NEUTRAL:
      return Result::neutral;
    case SPF_RESULT_NONE:
      return Result::none;
    case SPF_RESULT_TEMPERROR:
      return Result::temperror;
    case SPF_RESULT_PERMERROR:
    case SPF_RESULT_INVALID:
      break;
  }
  return Result::permerror;
}

}  // namespace

std::string_view to_string(Result result) {
  switch (result) {
    case Result::none:
      return "none";
    case Result::neutral:
      return "neutral";
    case Result::pass:
      return "pass";
    case Result::fail:
      return "fail";
    case Result::softfail:
      return "softfail";
    case Result::temperror:
      return "temperror";
    case Result::permerror:
      return "permerror";
  }
  return "permerror";
}

void Checker::ServerDeleter::operator()(SPF_server_struct* server) const {
  SPF_server_free(server);
}

Checker::Checker(dns::Resolver& resolver, Options options)
    : resolver_(resolver), options_(std::move(options)) {
  install_libspf2_handlers();
  // No DNS layer of its own: each check lends it one (see check()).
  server_.reset(SPF_server_new_dns(nullptr, 0));
  if (!server_) throw std::runtime_error("spf: SPF_server_new_dns failed");
  if (!options_.receiver.empty() && SPF_server_set_rec_dom(server_.get(), options_.receiver.c_str()) != 0) {
    throw std::runtime_error("spf: cannot set the receiver name");
  }
  // An empty default explanation: a fail without a published exp= has no explanation to show.
  SPF_response_t* errors = nullptr;
  const SPF_errcode_t err = SPF_server_set_explanation(server_.get(), "", &errors);
  if (errors != nullptr) SPF_response_free(errors);
  if (err != SPF_E_SUCCESS) throw std::runtime_error("spf: cannot clear the default explanation");
  // The hooks enforce the term limit over the whole evaluation; libspf2's own count restarts inside every
  // include, so it must never fire first.
  SPF_server_set_max_dns_mech(server_.get(), 1000);
}

Checker::~Checker() = default;

Verdict Checker::check_mail_from(std::string_view ip, std::string_view helo, std::string_view sender) const {
  return check(ip, helo, sender, false);
}

Verdict Checker::check_helo(std::string_view ip, std::string_view helo) const {
  return check(ip, helo, {}, true);
}

Verdict Checker::check(std::string_view ip, std::string_view helo, std::string_view sender,
                       bool helo_identity) const {
  Verdict v;
  CheckState st(resolver_, options_);

  // The client address; an IPv4-mapped IPv6 address is IPv4 (RFC 7208 5, 9).
  const std::string ip_text(ip);
  if (inet_pton(AF_INET, ip_text.c_str(), &st.ip4) != 1) {
    if (inet_pton(AF_INET6, ip_text.c_str(), &st.ip6) != 1) {
      v.result = Result::none;
      v.comment = "client address '" + printable(ip, 64) + "' is not an IP address";
      return v;
    }
    if (IN6_IS_ADDR_V4MAPPED(&st.ip6)) {
      std::memcpy(&st.ip4, &st.ip6.s6_addr[12], sizeof st.ip4);
    } else {
      st.ipv6 = true;
    }
  }
  char ip_buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(st.ipv6 ? AF_INET6 : AF_INET, st.ipv6 ? static_cast<const void*>(&st.ip6) : &st.ip4, ip_buf,
            sizeof ip_buf);
  const std::string client(ip_buf);

  // The identity (2.3, 2.4, 4.3): MAIL FROM's domain, or HELO's (also for the null reverse-path).
  if (helo_identity || sender.empty()) {
    v.domain = std::string(helo);
    sender = {};
  } else {
    const auto at = sender.rfind('@');
    v.domain = std::string(at == std::string_view::npos ? sender : sender.substr(at + 1));
  }
  const std::string shown = printable(v.domain, 100);
  if (!valid_identity_domain(v.domain)) {
    v.result = Result::none;
    v.comment = "'" + shown + "' is not a domain name that can publish SPF";
    return v;
  }

  Fetched top = fetch_record(st, v.domain);
  switch (top.status) {
    case Fetched::Status::found:
      break;
    case Fetched::Status::none:
      v.result = Result::none;
      v.comment = shown + ": " + top.text;
      return v;
    case Fetched::Status::trouble:
      v.result = Result::temperror;
      v.comment = "DNS trouble checking " + shown + ": " + top.text;
      return v;
    case Fetched::Status::permerror:
      v.result = Result::permerror;
      v.comment = shown + ": " + top.text;
      return v;
  }
  st.record_text = std::move(top.text);

  // This check's DNS layer, and a shallow copy of the configured server that uses it. The copy shares the
  // server's read-only parts (receiver name, default explanation) and is never freed itself.
  SPF_dns_server_t layer{};
  layer.lookup = lookup_hook;
  layer.get_spf = get_spf_hook;
  layer.name = "chainmail";
  layer.hook = &st;
  SPF_server_t server = *server_;
  server.resolver = &layer;
  server.destroy_resolver = 0;

  std::unique_ptr<SPF_request_t, RequestDeleter> request(SPF_request_new(&server));
  if (!request) throw std::bad_alloc();
  if (st.ipv6) {
    SPF_request_set_ipv6(request.get(), st.ip6);
  } else {
    SPF_request_set_ipv4(request.get(), st.ip4);
  }
  const std::string helo_text(helo);
  const std::string sender_text(sender);
  // An empty sender makes libspf2 use postmaster@<helo> (RFC 7208 2.4); so does a sender with no local-part.
  if (SPF_request_set_helo_dom(request.get(), helo_text.c_str()) != SPF_E_SUCCESS ||
      SPF_request_set_env_from(request.get(), sender_text.c_str()) != SPF_E_SUCCESS ||
      request->env_from_dp == nullptr) {
    throw std::bad_alloc();
  }
  request->cur_dom = request->env_from_dp;
  st.request = request.get();

  if (!run_libspf2(st, &server, request.get())) {
    // libspf2 gave up half-way (SPF_error): its objects for this check may be inconsistent, so leak them.
    (void)request.release();
    v.result = Result::temperror;
    v.comment = "libspf2 internal error: " + printable(st.guard.message, 200);
    return v;
  }
  const std::unique_ptr<SPF_response_t, ResponseDeleter> response(st.response);
  const std::unique_ptr<SPF_record_t, RecordDeleter> record(st.record);

  if (!st.permerror.empty()) {
    v.result = Result::permerror;
    v.comment = shown + ": " + st.permerror;
    return v;
  }
  if (!record) {
    // A record our syntax check accepted and libspf2 could not compile.
    v.result = Result::permerror;
    v.comment = shown + ": libspf2 cannot compile the record: " + SPF_strerror(st.compile_error);
    return v;
  }
  v.result = from_libspf2(response->result);
  switch (v.result) {
    case Result::pass:
      v.comment = shown + " designates " + client + " as permitted sender";
      break;
    case Result::fail:
      v.comment = shown + " does not designate " + client + " as permitted sender";
      if (response->explanation != nullptr) v.explanation = printable(response->explanation, kMaxExplanation);
      break;
    case Result::softfail:
      v.comment = shown + " does not designate " + client + " as permitted sender (softfail)";
      break;
    case Result::neutral:
      v.comment = shown + " neither permits nor denies " + client;
      break;
    case Result::none:
      v.comment = shown + ": no SPF record";
      break;
    case Result::temperror:
      v.comment = "DNS trouble checking " + shown + (st.trouble.empty() ? std::string() : ": " + st.trouble);
      break;
    case Result::permerror:
      v.comment =
          shown + ": " + (st.bad_record.empty() ? std::string(SPF_strerror(response->err)) : st.bad_record);
      break;
  }
  return v;
}

}  // namespace chainmail::spf
