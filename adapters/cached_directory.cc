#include "adapters/cached_directory.h"

#include <algorithm>

#include "core/address.h"

namespace chainmail {

CachedDirectory::CachedDirectory(Directory& inner, CacheOptions options, Clock clock)
    : inner_(inner),
      options_(options),
      clock_(std::move(clock)),
      per_shard_(std::max<std::size_t>(1, options.max_entries / kShards)) {}

template <typename Fetch>
Lookup<EntryPtr> CachedDirectory::cached(std::string key, Fetch fetch) {
  Shard& shard = shards_[std::hash<std::string>{}(key) % kShards];
  const auto now = clock_();
  {
    const std::lock_guard lock(shard.mutex);
    const auto it = shard.map.find(key);
    if (it != shard.map.end()) {
      if (it->second.expires > now) {
        shard.lru.splice(shard.lru.begin(), shard.lru, it->second.lru);
        hits_.fetch_add(1, std::memory_order_relaxed);
        return it->second.answer;
      }
      shard.lru.erase(it->second.lru);
      shard.map.erase(it);
    }
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  // Not under the lock: a slow directory must not stall lookups of other keys in this shard. Two threads
  // missing the same key both ask; the second answer simply replaces the first.
  Lookup<EntryPtr> answer = fetch();
  if (answer.is_trouble()) return answer;
  const auto ttl = answer.is_found() ? options_.positive_ttl : options_.negative_ttl;
  if (ttl.count() == 0) return answer;

  const std::lock_guard lock(shard.mutex);
  if (const auto it = shard.map.find(key); it != shard.map.end()) {
    shard.lru.erase(it->second.lru);
    shard.map.erase(it);
  }
  while (shard.map.size() >= per_shard_ && !shard.lru.empty()) {
    shard.map.erase(shard.lru.back());
    shard.lru.pop_back();
  }
  shard.lru.push_front(key);
  shard.map.emplace(std::move(key), Slot{answer, now + ttl, shard.lru.begin()});
  return answer;
}

Lookup<EntryPtr> CachedDirectory::user_by_mail(std::string_view address) {
  return cached("m:" + ascii_lower(address), [&] { return inner_.user_by_mail(address); });
}

Lookup<EntryPtr> CachedDirectory::group_by_name(std::string_view name) {
  return cached("g:" + ascii_lower(name), [&] { return inner_.group_by_name(name); });
}

Lookup<EntryPtr> CachedDirectory::entry_by_dn(std::string_view dn) {
  return cached("d:" + ascii_lower(dn), [&] { return inner_.entry_by_dn(dn); });
}

std::size_t CachedDirectory::size() {
  std::size_t n = 0;
  for (auto& s : shards_) {
    const std::lock_guard lock(s.mutex);
    n += s.map.size();
  }
  return n;
}

}  // namespace chainmail
