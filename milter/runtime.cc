// runtime.cc - see runtime.h.
#include "milter/runtime.h"

#include <stdexcept>

#include "adapters/dns/cached_resolver.h"
#include "adapters/dns/unbound_resolver.h"
#include "core/address.h"

namespace chainmail::milter {

Engines::Engines(const Config& config)
    : unbound_(std::make_unique<dns::UnboundResolver>(
          dns::UnboundOptions{config.dns.resolvers, config.dns.trust_anchor_file, config.dns.timeout_ms})) {
  // Answers repeat across messages (the same senders' SPF, keys and policies); a hit in our own cache costs
  // no round trip through libunbound's worker thread.
  resolver_ = unbound_.get();
  if (config.dns.cache_entries > 0) {
    dns::CacheOptions options;
    options.max_entries = static_cast<std::size_t>(config.dns.cache_entries);
    cache_ = std::make_unique<dns::CachedResolver>(*unbound_, options);
    resolver_ = cache_.get();
  }
  dmarc_ = std::make_unique<dmarc::Evaluator>(*resolver_, dmarc::Options{config.dmarc.public_suffix_list});
}

Engines::Engines(const Config& config, dns::Resolver& resolver)
    : resolver_(&resolver),
      dmarc_(
          std::make_unique<dmarc::Evaluator>(*resolver_, dmarc::Options{config.dmarc.public_suffix_list})) {}

namespace {

std::vector<Network> parse_networks(const std::vector<std::string>& cidrs) {
  std::vector<Network> out;
  for (const auto& c : cidrs) {
    auto n = parse_cidr(c);
    if (!n) throw std::runtime_error("milter.trusted_networks: \"" + c + "\" is not a network");
    out.push_back(*n);
  }
  return out;
}

spf::Options spf_options(const Config& c) {
  spf::Options o;
  o.max_void_lookups = static_cast<int>(c.spf.max_void_lookups);
  o.receiver = c.milter.authserv_id.empty() ? c.domains.main : c.milter.authserv_id;
  return o;
}

}  // namespace

Runtime::Runtime(Config c, Engines& engines)
    : config(std::move(c)),
      directory(config),
      router(config, directory.directory()),
      trusted(parse_networks(config.milter.trusted_networks)),
      authserv_id(config.milter.authserv_id.empty() ? config.domains.main : config.milter.authserv_id),
      spf(engines.resolver(), spf_options(config)),
      dkim(engines.resolver(), dkim::VerifyOptions{static_cast<std::size_t>(config.dkim.max_signatures),
                                                   static_cast<unsigned>(config.dkim.min_key_bits)}),
      dmarc(engines.dmarc()) {
  for (const auto& [domain, entries] : config.dkim.signing) {
    auto& keys = signing[ascii_lower(domain)];
    for (const auto& entry : entries) {
      const auto colon = entry.find(':');  // validate() guarantees "selector:path"
      keys.push_back(dkim::load_signing_key(domain, entry.substr(0, colon), entry.substr(colon + 1)));
    }
  }
}

const std::vector<dkim::SigningKey>* Runtime::keys_for(std::string_view domain) const {
  const auto it = signing.find(ascii_lower(domain));
  return it == signing.end() || it->second.empty() ? nullptr : &it->second;
}

}  // namespace chainmail::milter
