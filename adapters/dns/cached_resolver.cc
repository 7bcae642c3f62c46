// cached_resolver.cc - see cached_resolver.h.
#include "adapters/dns/cached_resolver.h"

#include <algorithm>
#include <utility>

namespace chainmail::dns {
namespace {

// Two bytes of type, then the lower-cased name without its trailing dot, built in one allocation.
std::string key_of(std::string_view name, RrType type) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  const auto t = static_cast<std::uint16_t>(type);
  std::string key;
  key.reserve(name.size() + 2);
  key += static_cast<char>(t >> 8);
  key += static_cast<char>(t & 0xff);
  for (const char c : name) key += c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  return key;
}

// What an entry costs, roughly: the key twice (map and LRU list) and the record data.
std::size_t bytes_of(const std::string& key, const Answer& answer) {
  std::size_t n = 2 * key.size() + answer.why.size();
  for (const auto& r : answer.records) n += r.size();
  return n;
}

}  // namespace

CachedResolver::CachedResolver(Resolver& next, CacheOptions options, Clock clock)
    : next_(next),
      options_(options),
      clock_(std::move(clock)),
      entries_per_shard_(std::max<std::size_t>(1, options.max_entries / kShards)),
      bytes_per_shard_(options.max_bytes / kShards) {}

void CachedResolver::erase(Shard& shard, std::unordered_map<std::string, Slot>::iterator it) {
  shard.bytes -= it->second.bytes;
  shard.lru.erase(it->second.lru);
  shard.map.erase(it);
}

std::optional<Answer> CachedResolver::find(const std::string& key, std::size_t hash,
                                           std::chrono::steady_clock::time_point now) {
  Shard& shard = shard_of(hash);
  const std::lock_guard lock(shard.mutex);
  const auto it = shard.map.find(key);
  if (it == shard.map.end()) return std::nullopt;
  if (it->second.expires <= now) {
    erase(shard, it);
    return std::nullopt;
  }
  shard.lru.splice(shard.lru.begin(), shard.lru, it->second.lru);
  Answer answer = it->second.answer;
  answer.ttl = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(it->second.expires - now).count());
  return answer;
}

void CachedResolver::store(std::string key, std::size_t hash, const Answer& answer,
                           std::chrono::steady_clock::time_point now) {
  if (answer.trouble()) return;  // the next lookup must ask again
  const std::uint32_t cap = answer.found() ? options_.max_ttl_s : options_.negative_ttl_s;
  const std::uint32_t ttl = std::min(answer.ttl, cap);
  if (ttl == 0) return;
  const std::size_t bytes = bytes_of(key, answer);
  if (bytes > bytes_per_shard_) return;  // would push out a whole shard; not worth keeping

  Shard& shard = shard_of(hash);
  const std::lock_guard lock(shard.mutex);
  if (const auto it = shard.map.find(key); it != shard.map.end()) erase(shard, it);
  while (!shard.lru.empty() &&
         (shard.map.size() >= entries_per_shard_ || shard.bytes + bytes > bytes_per_shard_)) {
    erase(shard, shard.map.find(shard.lru.back()));
  }
  shard.lru.push_front(key);
  shard.bytes += bytes;
  shard.map.emplace(std::move(key), Slot{answer, now + std::chrono::seconds(ttl), bytes, shard.lru.begin()});
}

Answer CachedResolver::resolve(std::string_view name, RrType type) {
  std::string key = key_of(name, type);
  const std::size_t hash = std::hash<std::string>{}(key);
  const auto now = clock_();
  if (auto hit = find(key, hash, now)) {
    hits_.fetch_add(1, std::memory_order_relaxed);
    return std::move(*hit);
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  // Not under a lock: a slow server must not stall lookups of other names in the shard.
  Answer answer = next_.resolve(name, type);
  // Stamped with the time of the question: the answer's TTL counts from before the wait, never longer.
  store(std::move(key), hash, answer, now);
  return answer;
}

std::size_t CachedResolver::size() {
  std::size_t n = 0;
  for (auto& s : shards_) {
    const std::lock_guard lock(s.mutex);
    n += s.map.size();
  }
  return n;
}

}  // namespace chainmail::dns
