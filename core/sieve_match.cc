// sieve_match.cc - see sieve_match.h.
#include "core/sieve_match.h"

#include <algorithm>
#include <optional>

#include "core/address.h"
#include "core/authres.h"

namespace chainmail::sieve {
namespace {

// The name a group or alias step stands for: the local part (lower case, detail removed) of an address, or
// the first RDN's value of a nested group's DN ("cn=ops,cn=groups,..." -> "ops"). nullopt when neither (a
// DN with escapes is not worth guessing at: it simply matches nothing).
std::optional<std::string> step_name(const std::string& subject, std::string_view delimiters) {
  const ParseResult parsed = parse_address(subject);
  if (parsed.address) return ascii_lower(split_detail(parsed.address->local, delimiters).base);
  const auto eq = subject.find('=');
  if (eq == std::string::npos) return std::nullopt;
  const auto end = subject.find(',', eq);
  const std::string_view value =
      std::string_view(subject).substr(eq + 1, end == std::string::npos ? std::string::npos : end - eq - 1);
  if (value.empty() || value.find_first_of("\\+\"") != std::string_view::npos) return std::nullopt;
  return ascii_lower(value);
}

}  // namespace

std::string_view auth_method_name(AuthMethod m) {
  switch (m) {
    case AuthMethod::spf:
      return "spf";
    case AuthMethod::dkim:
      return "dkim";
    case AuthMethod::dmarc:
      return "dmarc";
  }
  return "dmarc";
}

AuthresResults authres_results(std::span<const std::string_view> values, std::string_view authserv_id,
                               AuthMethod method) {
  AuthresResults out;
  const std::size_t n = std::min(values.size(), kMaxAuthresFields);
  for (std::size_t i = 0; i < n; ++i) {
    if (!authres::claims_authserv_id(values[i], authserv_id)) continue;
    const auto parsed = authres::parse(values[i]);
    if (!parsed) {
      out.field = AuthresResults::Field::unparsable;
      return out;
    }
    out.field = AuthresResults::Field::ours;
    const std::string_view name = auth_method_name(method);
    for (const authres::MethodResult& r : parsed->results) {
      if (r.method == name) out.results.push_back(r.result);
    }
    return out;
  }
  return out;
}

std::string our_authserv_id(const Config& config) {
  return config.milter.authserv_id.empty() ? config.domains.main : config.milter.authserv_id;
}

std::vector<std::string> route_names(const RouteResult& route, std::string_view mailbox_user,
                                     std::string_view mailbox_domain, std::string_view delimiters,
                                     RouteKind kind) {
  std::vector<std::string> names;
  if (route.outcome != Outcome::routed) return names;
  for (const Target& target : route.targets) {
    if (target.kind != TargetKind::mailbox) continue;
    const ParseResult parsed = parse_address(target.address);
    if (!parsed.address || !iequals(parsed.address->domain, mailbox_domain)) continue;
    if (!iequals(split_detail(parsed.address->local, delimiters).base, mailbox_user)) continue;
    for (const Step& step : target.path) {
      const bool wanted = (step.rule == Rule::group && kind != RouteKind::alias) ||
                          (step.rule == Rule::alias && kind != RouteKind::group);
      if (!wanted) continue;
      auto name = step_name(step.subject, delimiters);
      if (name && std::find(names.begin(), names.end(), *name) == names.end())
        names.push_back(std::move(*name));
    }
    break;  // the router delivers to a mailbox once: the first target for it is the only one
  }
  return names;
}

}  // namespace chainmail::sieve
