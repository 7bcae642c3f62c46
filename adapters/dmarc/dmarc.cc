// dmarc.cc - see dmarc.h. Record discovery and record checks are ours; alignment and the choice between p=
// and sp= are libopendmarc's, driven with the record we fetched.
#include "adapters/dmarc/dmarc.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <system_error>

#include "adapters/dmarc/opendmarc_compat.h"
#include "adapters/dmarc/record.h"
#include "adapters/dns/rdata.h"
#include "core/address.h"

namespace chainmail::dmarc {
namespace {

constexpr std::size_t kMaxDomainName = 253;
constexpr std::size_t kMaxLabel = 63;

// libopendmarc keeps the suffix table in process-global state: it is loaded for the first Evaluator and
// freed after the last one. A function-local static, so nothing runs before main().
struct LibraryState {
  std::mutex mu;
  std::size_t users = 0;
  std::string psl;
};
LibraryState& library_state() {
  static LibraryState state;
  return state;
}

std::string library_org_domain(std::string domain) {
  std::array<u_char, 256> buf{};  // a domain name is at most 253 octets; the library truncates to the size
  if (opendmarc_get_tld(as_uchar(domain), buf.data(), buf.size() - 1) != 0) return {};
  return ascii_lower(reinterpret_cast<const char*>(buf.data()));
}

void acquire_library(const std::string& psl) {
  auto& st = library_state();
  const std::lock_guard lock(st.mu);
  if (st.users > 0) {
    if (psl != st.psl) {
      throw std::runtime_error("dmarc.public_suffix_list: libopendmarc holds one list per process (" +
                               st.psl + " is loaded), cannot also load " + psl);
    }
    ++st.users;
    return;
  }
  OPENDMARC_LIB_T lib{};
  if (psl.empty() || psl.size() >= sizeof lib.tld_source_file) {
    throw std::runtime_error("dmarc.public_suffix_list: empty or over-long path");
  }
  lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
  std::memcpy(lib.tld_source_file, psl.data(), psl.size());
  if (const int rc = opendmarc_policy_library_init(&lib); rc != DMARC_PARSE_OKAY) {
    throw std::runtime_error("dmarc.public_suffix_list: cannot load " + psl + ": " +
                             std::generic_category().message(rc));
  }
  // An unreadable directory or an unrelated file loads as an empty table without an error; a list that
  // does not know "com" is not a public suffix list.
  if (library_org_domain("www.example.com") != "example.com") {
    opendmarc_policy_library_shutdown(&lib);
    throw std::runtime_error("dmarc.public_suffix_list: " + psl + " is not a public suffix list");
  }
  st.psl = psl;
  st.users = 1;
}

void release_library() noexcept {
  auto& st = library_state();
  const std::lock_guard lock(st.mu);
  if (--st.users == 0) {
    OPENDMARC_LIB_T lib{};
    opendmarc_policy_library_shutdown(&lib);
    st.psl.clear();
  }
}

struct ContextDeleter {
  void operator()(DMARC_POLICY_T* p) const noexcept { opendmarc_policy_connect_shutdown(p); }
};
using Context = std::unique_ptr<DMARC_POLICY_T, ContextDeleter>;

// Lower case, without a final dot.
std::string normalize(std::string_view d) {
  if (!d.empty() && d.back() == '.') d.remove_suffix(1);
  return ascii_lower(d);
}

// An ASCII host name (letters, digits, '-', '_' as libopendmarc's check_domain allows), bounded.
bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > kMaxDomainName) return false;
  std::size_t label = 0;
  for (char c : d) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '_') {
      if (++label > kMaxLabel) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}

int spf_outcome(std::string_view result) {
  if (iequals(result, "pass")) return DMARC_POLICY_SPF_OUTCOME_PASS;
  if (iequals(result, "none") || result.empty()) return DMARC_POLICY_SPF_OUTCOME_NONE;
  if (iequals(result, "temperror")) return DMARC_POLICY_SPF_OUTCOME_TMPFAIL;
  return DMARC_POLICY_SPF_OUTCOME_FAIL;
}

// The TXT records at _dmarc.<domain> that are DMARC records (RFC 7489 6.6.3 steps 1-2 and 3-4).
struct Fetched {
  enum class Kind { none, one, several, trouble };
  Kind kind = Kind::none;
  std::string record;
  std::string why;
};

Fetched fetch(dns::Resolver& resolver, const std::string& domain) {
  Fetched out;
  const std::string name = "_dmarc." + domain;
  if (name.size() > kMaxDomainName) return out;  // cannot exist
  const auto answer = resolver.resolve(name, dns::RrType::txt);
  if (answer.status == dns::Answer::Status::trouble) {
    out.kind = Fetched::Kind::trouble;
    out.why = answer.why.empty() ? "DNS trouble" : answer.why;
    return out;
  }
  if (answer.status != dns::Answer::Status::found) return out;
  std::size_t count = 0;
  for (const auto& rdata : answer.records) {
    auto txt = dns::decode_txt(rdata);
    if (!txt) {
      out.kind = Fetched::Kind::trouble;
      out.why = "undecodable TXT record";
      return out;
    }
    if (is_dmarc_record(*txt)) {
      if (++count == 1) out.record = std::move(*txt);
    }
  }
  out.kind = count == 0 ? Fetched::Kind::none : count == 1 ? Fetched::Kind::one : Fetched::Kind::several;
  return out;
}

Policy downgrade(Policy p) {
  return p == Policy::reject ? Policy::quarantine : Policy::none;
}

unsigned default_roll() {
  thread_local std::mt19937 gen{std::random_device{}()};
  return std::uniform_int_distribution<unsigned>(0, 99)(gen);
}

std::string library_error(std::string_view call, int status) {
  std::string s = "libopendmarc: ";
  s += call;
  s += " failed (";
  s += opendmarc_policy_status_to_str(status);
  s += ')';
  return s;
}

}  // namespace

std::string_view to_string(Result result) {
  switch (result) {
    case Result::none:
      return "none";
    case Result::pass:
      return "pass";
    case Result::fail:
      return "fail";
    case Result::temperror:
      return "temperror";
    case Result::permerror:
      return "permerror";
  }
  return "none";
}

std::string_view to_string(Policy policy) {
  switch (policy) {
    case Policy::none:
      return "none";
    case Policy::quarantine:
      return "quarantine";
    case Policy::reject:
      return "reject";
  }
  return "none";
}

Evaluator::Evaluator(dns::Resolver& resolver, Options options, PctRoll pct_roll)
    : resolver_(resolver), options_(std::move(options)), pct_roll_(std::move(pct_roll)) {
  acquire_library(options_.public_suffix_list);
}

Evaluator::~Evaluator() {
  release_library();
}

std::string Evaluator::organizational_domain(std::string_view domain) const {
  auto d = normalize(domain);
  if (!valid_domain(d)) return d;
  auto org = library_org_domain(d);
  if (!org.empty()) return org;
  // No rule matched: RFC 7489 3.2's default rule makes the last label the public suffix.
  const auto last = d.rfind('.');
  if (last == std::string::npos || last == 0) return d;
  const auto before = d.rfind('.', last - 1);
  return before == std::string::npos ? d : d.substr(before + 1);
}

Evaluation Evaluator::evaluate(const Input& input) const {
  Evaluation ev;
  ev.domain = normalize(input.header_from_domain);
  if (!valid_domain(ev.domain)) {
    ev.result = Result::permerror;
    ev.reason = "From domain is not a valid domain name";
    return ev;
  }

  // Policy discovery (RFC 7489 6.6.3).
  auto found = fetch(resolver_, ev.domain);
  std::string org;
  bool at_org = false;
  if (found.kind == Fetched::Kind::none) {
    org = organizational_domain(ev.domain);
    if (org != ev.domain) {
      found = fetch(resolver_, org);
      at_org = true;
    }
  }
  ev.policy_domain = at_org ? org : ev.domain;
  switch (found.kind) {
    case Fetched::Kind::trouble:
      ev.result = Result::temperror;
      ev.reason = "DNS trouble looking up _dmarc." + ev.policy_domain + ": " + found.why;
      return ev;
    case Fetched::Kind::several:
      ev.result = Result::none;
      ev.reason = "several DMARC records at _dmarc." + ev.policy_domain + ": no policy";
      return ev;
    case Fetched::Kind::none:
      ev.result = Result::none;
      ev.reason = "no DMARC record for " + ev.domain;
      if (at_org) ev.reason += " or " + org;
      ev.policy_domain.clear();
      return ev;
    case Fetched::Kind::one:
      break;
  }
  const auto parsed = parse_record(found.record);
  if (!parsed.record) {
    ev.result = Result::permerror;
    ev.reason = "malformed DMARC record at _dmarc." + ev.policy_domain + ": " + parsed.error;
    return ev;
  }
  const Record& record = *parsed.record;

  // libopendmarc: the facts, then its verdict.
  std::string ip = input.client_ip;
  const Context ctx(opendmarc_policy_connect_init(as_uchar(ip), ip.find(':') != std::string::npos ? 1 : 0));
  if (!ctx) throw std::bad_alloc();
  std::string from = ev.domain;
  if (const int s = opendmarc_policy_store_from_domain(ctx.get(), as_uchar(from)); s != DMARC_PARSE_OKAY) {
    ev.result = Result::temperror;
    ev.reason = library_error("store_from_domain", s);
    return ev;
  }
  // Strict alignment is an exact match, and libopendmarc 1.4.2 gets it wrong when the From domain is an
  // organizational domain: it compares the organizational domain of the other name with the From domain, so
  // d=sub.example.org "aligns" strictly with example.org (OpenDMARC issue #268, fixed after 1.4.2 by #354).
  // Under a strict mode only exact matches are handed over. An SPF domain libopendmarc refuses (it checks
  // the characters) simply cannot align either.
  auto may_align = [&](const std::string& domain, bool strict) {
    return valid_domain(domain) && (!strict || domain == from);
  };
  if (std::string spf = normalize(input.spf.domain); may_align(spf, record.aspf_strict)) {
    opendmarc_policy_store_spf(ctx.get(), as_uchar(spf), spf_outcome(input.spf.result),
                               DMARC_POLICY_SPF_ORIGIN_MAILFROM, nullptr);
  }
  std::vector<std::string> dkim_passes;
  for (const auto& d : input.dkim) {
    auto domain = normalize(d.domain);
    if (iequals(d.result, "pass") && may_align(domain, record.adkim_strict))
      dkim_passes.push_back(std::move(domain));
  }
  std::stable_partition(dkim_passes.begin(), dkim_passes.end(),
                        [&](const std::string& d) { return d == from; });
  for (auto& d : dkim_passes) {
    opendmarc_policy_store_dkim(ctx.get(), as_uchar(d), nullptr, DMARC_POLICY_DKIM_OUTCOME_PASS, nullptr);
  }
  std::string canonical = record.canonical();
  if (const int s = opendmarc_policy_store_dmarc(ctx.get(), as_uchar(canonical), as_uchar(from),
                                                 at_org ? as_uchar(org) : nullptr);
      s != DMARC_PARSE_OKAY) {
    ev.result = Result::temperror;
    ev.reason = library_error("store_dmarc", s);
    return ev;
  }
  const int verdict = opendmarc_get_policy_to_enforce(ctx.get());
  int dkim_alignment = 0;
  int spf_alignment = 0;
  opendmarc_policy_fetch_alignment(ctx.get(), &dkim_alignment, &spf_alignment);
  ev.spf_aligned = spf_alignment == DMARC_POLICY_SPF_ALIGNMENT_PASS;
  ev.dkim_aligned = dkim_alignment == DMARC_POLICY_DKIM_ALIGNMENT_PASS;
  int p = 0;
  int sp = 0;
  int pct = 100;
  opendmarc_policy_fetch_p(ctx.get(), &p);
  opendmarc_policy_fetch_sp(ctx.get(), &sp);
  opendmarc_policy_fetch_pct(ctx.get(), &pct);
  const bool used_sp = opendmarc_get_policy_token_used(ctx.get()) == DMARC_USED_POLICY_IS_SP;
  const int governing = used_sp ? sp : p;
  ev.policy = governing == DMARC_RECORD_P_REJECT       ? Policy::reject
              : governing == DMARC_RECORD_P_QUARANTINE ? Policy::quarantine
                                                       : Policy::none;
  std::string tag = used_sp ? "sp=" : "p=";
  tag += to_string(ev.policy);
  if (record.p_replaced) tag += " (invalid p= or sp=, rua= present)";

  switch (verdict) {
    case DMARC_POLICY_PASS:
      ev.result = Result::pass;
      ev.reason = tag + "; aligned " +
                  (ev.spf_aligned && ev.dkim_aligned ? "SPF and DKIM"
                   : ev.spf_aligned                  ? "SPF"
                                                     : "DKIM") +
                  " pass";
      return ev;
    case DMARC_POLICY_REJECT:
    case DMARC_POLICY_QUARANTINE:
    case DMARC_POLICY_NONE:
      break;
    default:
      ev.result = Result::temperror;
      ev.policy = Policy::none;
      ev.reason = library_error("get_policy_to_enforce", verdict);
      return ev;
  }

  ev.result = Result::fail;
  ev.reason = tag + "; no aligned SPF or DKIM pass";
  if (ev.policy == Policy::none) return ev;

  // A check that could not be made might have passed: not a verdict to enforce.
  auto aligned = [&](std::string_view domain, bool strict) {
    auto d = normalize(domain);
    if (!may_align(d, strict)) return false;
    return strict ||
           opendmarc_policy_check_alignment(as_uchar(from), as_uchar(d), DMARC_RECORD_A_RELAXED) == 0;
  };
  const bool spf_trouble =
      iequals(input.spf.result, "temperror") && aligned(input.spf.domain, record.aspf_strict);
  const bool dkim_trouble = std::any_of(input.dkim.begin(), input.dkim.end(), [&](const DkimInput& d) {
    return iequals(d.result, "temperror") && aligned(d.domain, record.adkim_strict);
  });
  if (spf_trouble || dkim_trouble) {
    ev.result = Result::temperror;
    ev.reason = tag + "; no aligned pass, and an aligned " + (spf_trouble ? "SPF" : "DKIM") +
                " check had a temporary error";
    return ev;
  }

  // pct= sampling (RFC 7489 6.6.4).
  if (pct < 100) {
    const unsigned roll = pct_roll_ ? pct_roll_() : default_roll();
    ev.reason += "; pct=" + std::to_string(pct);
    if (roll >= static_cast<unsigned>(std::max(pct, 0))) {
      ev.policy = downgrade(ev.policy);
      ev.reason += " not sampled, applying ";
      ev.reason += to_string(ev.policy);
    } else {
      ev.reason += " sampled";
    }
  }
  return ev;
}

}  // namespace chainmail::dmarc
