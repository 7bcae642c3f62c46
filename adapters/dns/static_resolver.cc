// static_resolver.cc - see static_resolver.h.
#include "adapters/dns/static_resolver.h"

#include "core/address.h"

namespace chainmail::dns {

std::string StaticResolver::key(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return ascii_lower(name);
}

void StaticResolver::add(std::string_view name, RrType type, std::string rdata) {
  const std::lock_guard lock(mu_);
  zone_[key(name)][static_cast<std::uint16_t>(type)].push_back(std::move(rdata));
}

void StaticResolver::add_name(std::string_view name) {
  const std::lock_guard lock(mu_);
  zone_[key(name)];
}

void StaticResolver::set_trouble(std::string_view name, RrType type) {
  const std::lock_guard lock(mu_);
  trouble_[{key(name), static_cast<std::uint16_t>(type)}] = true;
}

Answer StaticResolver::resolve(std::string_view name, RrType type) {
  ++queries_;
  const auto k = key(name);
  const auto t = static_cast<std::uint16_t>(type);
  const std::lock_guard lock(mu_);
  Answer answer;
  if (trouble_.contains({k, t})) {
    answer.status = Answer::Status::trouble;
    answer.why = "timeout (static zone)";
    return answer;
  }
  answer.ttl = kTtl;
  const auto node = zone_.find(k);
  if (node == zone_.end()) {
    answer.status = Answer::Status::nxdomain;
    return answer;
  }
  const auto records = node->second.find(t);
  if (records == node->second.end() || records->second.empty()) {
    answer.status = Answer::Status::nodata;
    return answer;
  }
  answer.status = Answer::Status::found;
  answer.records = records->second;
  return answer;
}

}  // namespace chainmail::dns
