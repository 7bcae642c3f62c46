// router.h - the ordered chain that decides where every recipient goes (the product's heart).
//
// For an address on a hosted domain the rules are tried in exactly this order (the operator flowchart):
//   a. transport rule (static table)          -> service target   service@service_domain
//   b. user with a forwarding address          -> forward target   the external address
//   c. local user (mail on a hosted domain)    -> mailbox target   uid@mailbox_domain
//   d. group                                   -> every member, each routed again from a.
//   e. service account (mail on the internal domain) -> mailbox target
//   f. alias (static table)                    -> every target, routed again from a.
//   g. nothing matched                          -> unknown
// A group or alias that yields no deliverable address does not match: the chain goes on. The detail of
// joe+lists is kept through every step, as Postfix keeps an unmatched extension. Cycles end (a stack of the
// addresses and groups being expanded; one warning names the cycle); duplicates are delivered once; the
// nesting depth and the total expansion are bounded (routing.max_depth, routing.max_expansion).
//
// DIAGNOSTICS: the result carries every target with the path of rules that led to it, warnings (dangling
// member DNs, cycles, members without mail), and trouble that is never reported as unknown.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "address.h"
#include "config.h"
#include "directory.h"
#include "lookup.h"

namespace chainmail {

enum class Rule { domain_alias, transport, forward, user, group, member, service_account, alias, external };
std::string_view rule_name(Rule r);    // "transport", "forward", ...
std::string_view rule_letter(Rule r);  // the flowchart's letter: "a" ... "f", "" for the others

struct Step {
  Rule rule;
  std::string subject;  // the address or DN this rule matched
  std::string detail;   // what it matched with (the table entry, the entry's DN, the attribute value)
};

enum class TargetKind { mailbox, service, forward };
std::string_view target_kind_name(TargetKind k);

struct Target {
  TargetKind kind;
  std::string address;
  std::vector<Step> path;
};

enum class Outcome { routed, unknown, not_hosted, invalid, trouble };
std::string_view outcome_name(Outcome o);

struct RouteResult {
  std::string input;
  Outcome outcome = Outcome::unknown;
  std::vector<Target> targets;        // routed: at least one
  std::vector<std::string> warnings;  // things an operator should know even when mail flows
  std::optional<Trouble> trouble;     // outcome == trouble
  std::string reason;                 // unknown / not_hosted / invalid / trouble: why
};

class Router {
 public:
  // `directory` must outlive the router. The tables are normalised once here.
  Router(const Config& config, Directory& directory);

  // Whether targets carry the path of rules that led to them. Diagnosis wants it; the hot path (socketmap,
  // milter) only needs the targets and saves the work.
  enum class Explain { no, yes };

  // Thread-safe as long as the directory is.
  RouteResult route(std::string_view address, Explain explain = Explain::yes) const;

  enum class DomainClass { main, internal, mailbox, service, foreign };
  DomainClass classify(std::string_view domain) const;
  bool is_hosted(std::string_view domain) const {
    const auto c = classify(domain);
    return c == DomainClass::main || c == DomainClass::internal;
  }

 private:
  friend class Resolution;
  struct Options {
    std::string main_domain;
    std::vector<std::string> alias_domains;
    std::string internal_domain;
    std::string delimiters;
    std::string mailbox_domain;
    std::string service_domain;
    std::size_t max_depth;
    std::size_t max_expansion;
  };
  Options opt_;
  // Keys lower-cased, domains canonical (alias domains mapped to the main domain).
  std::unordered_map<std::string, std::string> transport_;
  std::unordered_map<std::string, std::vector<std::string>> aliases_;
  Directory& directory_;

  const std::string* find_transport(const std::string& key) const;
  const std::vector<std::string>* find_alias(const std::string& key) const;
};

}  // namespace chainmail
