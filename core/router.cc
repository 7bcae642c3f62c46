#include "router.h"

#include <algorithm>
#include <span>
#include <unordered_set>
#include <utility>

namespace chainmail {

std::string_view rule_name(Rule r) {
  switch (r) {
    case Rule::domain_alias:
      return "domain-alias";
    case Rule::transport:
      return "transport";
    case Rule::forward:
      return "forward";
    case Rule::user:
      return "user";
    case Rule::group:
      return "group";
    case Rule::member:
      return "member";
    case Rule::service_account:
      return "service-account";
    case Rule::alias:
      return "alias";
    case Rule::external:
      return "external";
  }
  return "?";
}

std::string_view rule_letter(Rule r) {
  switch (r) {
    case Rule::transport:
      return "a";
    case Rule::forward:
      return "b";
    case Rule::user:
      return "c";
    case Rule::group:
      return "d";
    case Rule::service_account:
      return "e";
    case Rule::alias:
      return "f";
    default:
      return "";
  }
}

std::string_view target_kind_name(TargetKind k) {
  switch (k) {
    case TargetKind::mailbox:
      return "mailbox";
    case TargetKind::service:
      return "service";
    case TargetKind::forward:
      return "forward";
  }
  return "?";
}

std::string_view outcome_name(Outcome o) {
  switch (o) {
    case Outcome::routed:
      return "routed";
    case Outcome::unknown:
      return "unknown";
    case Outcome::not_hosted:
      return "not-hosted";
    case Outcome::invalid:
      return "invalid";
    case Outcome::trouble:
      return "trouble";
  }
  return "?";
}

Router::Router(const Config& config, Directory& directory) : directory_(directory) {
  opt_.main_domain = ascii_lower(config.domains.main);
  for (const auto& d : config.domains.aliases) opt_.alias_domains.push_back(ascii_lower(d));
  opt_.internal_domain = ascii_lower(config.domains.internal);
  opt_.delimiters = config.routing.recipient_delimiter;
  opt_.mailbox_domain = ascii_lower(config.routing.mailbox_domain);
  opt_.service_domain = ascii_lower(config.routing.service_domain);
  opt_.max_depth = static_cast<std::size_t>(config.routing.max_depth);
  opt_.max_expansion = static_cast<std::size_t>(config.routing.max_expansion);

  // Keys are stored as the router looks them up: lower case, alias domains mapped to the main domain.
  auto canonical_key = [this](const std::string& key) {
    const auto parsed = parse_address(key);
    if (!parsed.address) return ascii_lower(key);  // a bare local part
    const auto& a = *parsed.address;
    const bool alias_domain =
        std::find(opt_.alias_domains.begin(), opt_.alias_domains.end(), a.domain) != opt_.alias_domains.end();
    return ascii_lower(a.local) + "@" + (alias_domain ? opt_.main_domain : a.domain);
  };
  for (const auto& [key, values] : config.transport) {
    if (!values.empty()) transport_.emplace(canonical_key(key), values.front());
  }
  for (const auto& [key, targets] : config.aliases) aliases_.emplace(canonical_key(key), targets);
}

Router::DomainClass Router::classify(std::string_view domain) const {
  // parse_address() lower-cases domains: only an upper-case domain from elsewhere pays for a copy.
  const bool lower = std::none_of(domain.begin(), domain.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
  const std::string lowered = lower ? std::string() : ascii_lower(domain);
  const std::string_view d = lower ? domain : std::string_view(lowered);
  if (d == opt_.main_domain) return DomainClass::main;
  if (std::find(opt_.alias_domains.begin(), opt_.alias_domains.end(), d) != opt_.alias_domains.end())
    return DomainClass::main;
  if (!opt_.internal_domain.empty() && d == opt_.internal_domain) return DomainClass::internal;
  if (d == opt_.mailbox_domain) return DomainClass::mailbox;
  if (d == opt_.service_domain) return DomainClass::service;
  return DomainClass::foreign;
}

const std::string* Router::find_transport(const std::string& key) const {
  const auto it = transport_.find(key);
  return it == transport_.end() ? nullptr : &it->second;
}

const std::vector<std::string>* Router::find_alias(const std::string& key) const {
  const auto it = aliases_.find(key);
  return it == aliases_.end() ? nullptr : &it->second;
}

// One resolution: the state of routing one input address. Not shared between threads.
//
// Paths are kept in an arena: each step points to the step before it, so expanding a group of N members
// pushes N steps instead of copying N paths; only the final targets get their path spelled out (finish()).
class Resolution {
 public:
  Resolution(const Router& router, RouteResult& result, bool explain)
      : r_(router), o_(router.opt_), result_(result), explain_(explain) {}

  // cycle: unmatched because the address or group is already being expanded (warned about once).
  enum class Match { matched, unmatched, cycle, trouble };
  using StepId = std::size_t;
  static constexpr StepId kRoot = static_cast<StepId>(-1);

  // `known` is an entry the caller already holds for this address (a group member): see Entry::is_user.
  Match route_address(const Address& address, StepId parent, std::size_t depth,
                      const EntryPtr* known = nullptr);

  // Moves the targets, with their paths spelled out, into the result.
  void finish();

 private:
  struct Node {
    Step step;
    StepId parent;
    EntryPtr entry;  // when set, the step's detail is this entry's DN (shared, not copied per step)
  };
  struct Pending {
    TargetKind kind;
    std::string address;
    StepId last;
  };

  const Router& r_;
  const Router::Options& o_;
  RouteResult& result_;
  const bool explain_;  // record the path of every target
  std::vector<Node> steps_;
  std::vector<Pending> pending_;
  std::vector<std::string> stack_;           // addresses and DNs being expanded (cycle detection)
  std::unordered_set<std::string> done_;     // addresses and DNs fully expanded (duplicates)
  std::unordered_set<std::string> targets_;  // kind + address already delivered to
  std::size_t expansions_ = 0;
  bool cycle_warned_ = false;

  StepId push(StepId parent, Rule rule, std::string subject, std::string detail) {
    if (!explain_) return parent;
    steps_.push_back({{rule, std::move(subject), std::move(detail)}, parent, nullptr});
    return steps_.size() - 1;
  }
  StepId push(StepId parent, Rule rule, std::string subject, const EntryPtr& entry) {
    if (!explain_) return parent;
    steps_.push_back({{rule, std::move(subject), {}}, parent, entry});
    return steps_.size() - 1;
  }
  Match fail(Trouble t) {
    if (!result_.trouble) result_.trouble = std::move(t);
    return Match::trouble;
  }
  Match guard(const std::string& key, std::size_t depth, bool& duplicate);
  Match add_target(TargetKind kind, std::string address, StepId last);
  Match expand_group(const Entry& group, const std::string& detail, StepId parent, std::size_t depth,
                     std::size_t& yielded);
  Match expand_member(const std::string& dn, const Lookup<EntryPtr>& entry, const std::string& detail,
                      StepId parent, std::size_t depth, std::size_t& yielded);
  // Adds `detail` to the local part of `target` unless it has one already (Postfix's unmatched extension).
  std::string with_detail(const std::string& target, const std::string& detail) const;
};

void Resolution::finish() {
  result_.targets.reserve(pending_.size());
  for (auto& p : pending_) {
    std::vector<Step> path;
    for (StepId id = p.last; id != kRoot; id = steps_[id].parent) {
      path.push_back(steps_[id].step);
      if (steps_[id].entry) path.back().detail = steps_[id].entry->dn;
    }
    std::reverse(path.begin(), path.end());
    result_.targets.push_back({p.kind, std::move(p.address), std::move(path)});
  }
}

std::string Resolution::with_detail(const std::string& target, const std::string& detail) const {
  if (detail.empty()) return target;
  const std::size_t at = target.rfind('@');
  const std::string local = target.substr(0, at);
  if (local.find_first_of(o_.delimiters) != std::string::npos) return target;
  return at == std::string::npos ? target + detail : local + detail + target.substr(at);
}

Resolution::Match Resolution::guard(const std::string& key, std::size_t depth, bool& duplicate) {
  duplicate = false;
  if (depth > o_.max_depth) {
    return fail(Trouble::configuration(
        "nesting deeper than routing.max_depth = " + std::to_string(o_.max_depth) + " at " + key));
  }
  if (++expansions_ > o_.max_expansion) {
    return fail(Trouble::configuration("expansion larger than routing.max_expansion = " +
                                       std::to_string(o_.max_expansion)));
  }
  if (std::find(stack_.begin(), stack_.end(), key) != stack_.end()) {
    if (!cycle_warned_) {
      std::string cycle;
      for (auto it = std::find(stack_.begin(), stack_.end(), key); it != stack_.end(); ++it)
        cycle += *it + " -> ";
      result_.warnings.push_back("cycle: " + cycle + key + " (expansion stopped there)");
      cycle_warned_ = true;
    }
    return Match::cycle;
  }
  if (done_.count(key) != 0) duplicate = true;
  return Match::matched;
}

Resolution::Match Resolution::add_target(TargetKind kind, std::string address, StepId last) {
  std::string key = std::string(target_kind_name(kind)) + ":" + ascii_lower(address);
  if (targets_.insert(std::move(key)).second) pending_.push_back({kind, std::move(address), last});
  return Match::matched;
}

Resolution::Match Resolution::route_address(const Address& address, StepId parent, std::size_t depth,
                                            const EntryPtr* known) {
  using DC = Router::DomainClass;
  const DC dc = r_.classify(address.domain);
  switch (dc) {
    case DC::foreign:
      return add_target(TargetKind::forward, address.str(),
                        push(parent, Rule::external, address.str(), "not a hosted domain"));
    case DC::mailbox:
      return add_target(TargetKind::mailbox, address.str(), parent);
    case DC::service:
      return add_target(TargetKind::service, address.str(), parent);
    case DC::main:
    case DC::internal:
      break;
  }
  const std::string shown = explain_ ? address.str() : std::string();  // the subject of this address's steps
  const std::string& domain = dc == DC::main ? o_.main_domain : o_.internal_domain;
  if (address.domain != domain) parent = push(parent, Rule::domain_alias, shown, "same people as " + domain);

  LocalPart lp = split_detail(address.local, o_.delimiters);
  if (!lp.detail.empty() && !is_dot_atom(lp.base + lp.detail)) {
    // The detail travels into target addresses and into comma-separated socketmap replies: a quoted detail
    // such as "alice+x,bob" must never become two recipients. Deliver to the base address instead.
    result_.warnings.push_back("detail \"" + lp.detail + "\" of " + address.str() +
                               " is not a dot-atom; not kept");
    lp.detail.clear();
  }
  const std::string full_key = ascii_lower(lp.base + lp.detail) + "@" + domain;
  const std::string base_key = lp.detail.empty() ? full_key : ascii_lower(lp.base) + "@" + domain;

  bool duplicate = false;
  if (const Match m = guard(full_key, depth, duplicate); m != Match::matched) return m;
  if (duplicate) return Match::matched;
  stack_.push_back(full_key);
  struct Pop {
    std::vector<std::string>& s;
    ~Pop() { s.pop_back(); }
  } pop{stack_};
  auto finish = [this, &full_key](Match m) {
    if (m == Match::matched) done_.insert(full_key);
    return m;
  };

  // a. transport rule: the full address first, then without the detail (which the service target keeps).
  {
    const std::string* service = r_.find_transport(full_key);
    std::string detail;
    if (service == nullptr && !lp.detail.empty()) {
      service = r_.find_transport(base_key);
      detail = lp.detail;
    }
    if (service != nullptr) {
      return finish(add_target(TargetKind::service, *service + detail + "@" + o_.service_domain,
                               push(parent, Rule::transport, shown, "service " + *service)));
    }
  }

  // b, c (and e, decided after d): one directory lookup finds the user by the detail-less address, unless
  // the caller already holds that very entry.
  const std::string user_address = lp.base + "@" + domain;
  EntryPtr user_entry;
  if (known != nullptr && (*known)->is_user &&
      std::any_of((*known)->mail.begin(), (*known)->mail.end(),
                  [&user_address](const std::string& m) { return iequals(m, user_address); })) {
    user_entry = *known;
  } else {
    auto user = r_.directory_.user_by_mail(user_address);
    if (user.is_trouble()) return fail(user.trouble_info());
    if (user.is_found()) user_entry = user.take();
  }
  if (user_entry) {
    const Entry& e = *user_entry;
    if (!e.forward.empty()) {
      const StepId fstep = push(parent, Rule::forward, shown, user_entry);
      Match m = Match::unmatched;
      for (const auto& fwd : e.forward) {
        const auto parsed = parse_address(with_detail(fwd, lp.detail));
        if (!parsed.address) {
          result_.warnings.push_back("forwarding address \"" + fwd + "\" of " + e.dn + " is not an address");
          continue;
        }
        const Match fm = route_address(*parsed.address, fstep, depth + 1);
        if (fm == Match::trouble) return fm;
        if (fm == Match::matched) m = Match::matched;
      }
      if (m == Match::matched) return finish(m);
    } else if (dc == DC::main) {
      if (e.uid.empty()) return fail(Trouble::configuration(e.dn + " has a mail address but no uid"));
      if (e.locked) result_.warnings.push_back(e.dn + " is locked: login refused, mail still delivered");
      return finish(add_target(TargetKind::mailbox, e.uid + lp.detail + "@" + o_.mailbox_domain,
                               push(parent, Rule::user, shown, user_entry)));
    }
  }

  // d. group: every member, each routed again; a group that yields nothing does not match.
  {
    const auto group = r_.directory_.group_by_name(lp.base);
    if (group.is_trouble()) return fail(group.trouble_info());
    if (group.is_found()) {
      const Entry& g = *group.value();
      std::size_t yielded = 0;
      if (expand_group(g, lp.detail, push(parent, Rule::group, shown, group.value()), depth, yielded) ==
          Match::trouble)
        return Match::trouble;
      if (yielded > 0) return finish(Match::matched);
      if (!cycle_warned_)
        result_.warnings.push_back("group " + g.dn + " yields no deliverable address; not matched");
    }
  }

  // e. service account: a user whose mail is on the internal domain.
  if (user_entry && dc == DC::internal && user_entry->forward.empty()) {
    const Entry& e = *user_entry;
    if (e.uid.empty()) return fail(Trouble::configuration(e.dn + " has a mail address but no uid"));
    return finish(add_target(TargetKind::mailbox, e.uid + lp.detail + "@" + o_.mailbox_domain,
                             push(parent, Rule::service_account, shown, user_entry)));
  }

  // f. alias: address keys before bare local parts, each with the detail before without it.
  {
    const std::string bare_full = ascii_lower(lp.base + lp.detail);
    const std::string bare_base = ascii_lower(lp.base);
    const std::vector<std::string>* targets = nullptr;
    std::string detail;
    std::string matched_key;
    for (const auto& [key, key_detail] : {std::pair{&full_key, false}, std::pair{&base_key, true},
                                          std::pair{&bare_full, false}, std::pair{&bare_base, true}}) {
      if (key_detail && lp.detail.empty()) continue;
      if ((targets = r_.find_alias(*key)) != nullptr) {
        detail = key_detail ? lp.detail : std::string();
        matched_key = *key;
        break;
      }
    }
    if (targets != nullptr) {
      bool any = false;
      bool cycled = false;
      for (const auto& t : *targets) {
        std::string target = t.find('@') == std::string::npos ? t + "@" + o_.main_domain : t;
        const auto parsed = parse_address(with_detail(target, detail));
        if (!parsed.address) continue;  // validate() rejects these at load time
        const Match m = route_address(*parsed.address,
                                      push(parent, Rule::alias, shown, matched_key + " = " + t), depth + 1);
        if (m == Match::trouble) return m;
        any = any || m == Match::matched;
        cycled = cycled || m == Match::cycle;
      }
      if (any) return finish(Match::matched);
      if (!cycled)
        result_.warnings.push_back("alias " + matched_key + " yields no deliverable address; not matched");
    }
  }

  // g. nothing matched.
  return Match::unmatched;
}

Resolution::Match Resolution::expand_group(const Entry& group, const std::string& detail, StepId parent,
                                           std::size_t depth, std::size_t& yielded) {
  const std::string key = ascii_lower(group.dn);  // DNs and addresses cannot collide: one has "@"
  bool duplicate = false;
  if (const Match m = guard(key, depth + 1, duplicate); m != Match::matched) return m;
  if (duplicate) {
    ++yielded;  // its members were delivered to already
    return Match::matched;
  }
  stack_.push_back(key);
  // Members are fetched a batch at a time (one directory round trip per batch); a batch bounds the work
  // done ahead of routing.max_expansion.
  constexpr std::size_t kBatch = 64;
  const std::span<const std::string> members(group.member);
  for (std::size_t from = 0; from < members.size(); from += kBatch) {
    const auto batch = members.subspan(from, std::min(kBatch, members.size() - from));
    const auto entries = r_.directory_.entries_by_dn(batch);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (expand_member(batch[i], entries[i], detail, parent, depth + 1, yielded) == Match::trouble) {
        stack_.pop_back();
        return Match::trouble;
      }
    }
  }
  stack_.pop_back();
  done_.insert(key);
  return Match::matched;
}

Resolution::Match Resolution::expand_member(const std::string& dn, const Lookup<EntryPtr>& entry,
                                            const std::string& detail, StepId parent, std::size_t depth,
                                            std::size_t& yielded) {
  if (entry.is_trouble()) return fail(entry.trouble_info());
  if (entry.is_not_found()) {
    result_.warnings.push_back("member " + dn + " does not exist; skipped");
    return Match::unmatched;
  }
  const EntryPtr& member = entry.value();
  const Entry& e = *member;
  if (!e.member.empty()) {  // a nested group
    return expand_group(e, detail, push(parent, Rule::group, e.dn, "nested group"), depth, yielded);
  }
  if (e.mail.empty()) {
    result_.warnings.push_back("member " + dn + " has no mail address; skipped");
    return Match::unmatched;
  }
  for (const auto& mail : e.mail) {
    const auto parsed = parse_address(with_detail(mail, detail));
    if (!parsed.address) {
      result_.warnings.push_back("member " + dn + " has an invalid mail address; skipped");
      continue;
    }
    const Match m = route_address(
        *parsed.address, push(parent, Rule::member, explain_ ? parsed.address->str() : std::string(), member),
        depth + 1, &member);
    if (m == Match::trouble) return m;
    if (m == Match::matched) {
      ++yielded;
    } else if (m == Match::unmatched) {
      result_.warnings.push_back("member " + dn + " (" + parsed.address->str() + ") routes nowhere; skipped");
    }
  }
  return Match::matched;
}

RouteResult Router::route(std::string_view text, Explain explain) const {
  RouteResult result;
  result.input = std::string(text);
  const auto parsed = parse_address(text);
  if (!parsed.address) {
    result.outcome = Outcome::invalid;
    result.reason = parsed.error;
    return result;
  }
  if (!is_hosted(parsed.address->domain)) {
    result.outcome = Outcome::not_hosted;
    result.reason = "domain " + parsed.address->domain + " is not hosted here";
    return result;
  }
  Resolution resolution(*this, result, explain == Explain::yes);
  const auto m = resolution.route_address(*parsed.address, Resolution::kRoot, 0);
  resolution.finish();
  if (m == Resolution::Match::trouble) {
    result.outcome = Outcome::trouble;
    result.targets.clear();  // never a partial answer: the whole recipient waits
    result.reason = result.trouble->reason;
  } else if (result.targets.empty()) {
    result.outcome = Outcome::unknown;
    result.reason = "no rule matched " + parsed.address->str();
  } else {
    result.outcome = Outcome::routed;
  }
  return result;
}

}  // namespace chainmail
