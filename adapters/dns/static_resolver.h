// static_resolver.h - a Resolver answering from records held in memory (tests, benchmarks, the SPF suite).
//
// Names match case-insensitively, without the trailing dot. A name with records of other types answers nodata
// for a missing type; an unknown name answers nxdomain; names marked with set_trouble() answer trouble (the
// suite's TIMEOUT). It counts queries, so tests can assert how many lookups a check made. Found, nodata and
// nxdomain answers carry ttl kTtl (300 s), so a CachedResolver in front of it keeps them; trouble has ttl 0.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "adapters/dns/resolver.h"

namespace chainmail::dns {

class StaticResolver final : public Resolver {
 public:
  static constexpr std::uint32_t kTtl = 300;

  // rdata in wire format (see rdata.h encoders).
  void add(std::string_view name, RrType type, std::string rdata);
  // Marks a name as existing with no records (so its lookups answer nodata, not nxdomain).
  void add_name(std::string_view name);
  void set_trouble(std::string_view name, RrType type);

  Answer resolve(std::string_view name, RrType type) override;

  std::size_t queries() const { return queries_.load(); }

 private:
  static std::string key(std::string_view name);
  std::mutex mu_;
  std::map<std::string, std::map<std::uint16_t, std::vector<std::string>>> zone_;
  std::map<std::pair<std::string, std::uint16_t>, bool> trouble_;
  std::atomic<std::size_t> queries_{0};
};

}  // namespace chainmail::dns
