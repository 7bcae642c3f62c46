#include "adapters/cached_directory.h"

#include <algorithm>

#include "core/address.h"

namespace chainmail {
namespace {

// "d:" + the lower-cased DN, built in one allocation (this runs for every group member).
std::string key_of(char kind, std::string_view text) {
  std::string key;
  key.reserve(text.size() + 2);
  key += kind;
  key += ':';
  for (const char c : text) key += c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  return key;
}

}  // namespace

CachedDirectory::CachedDirectory(Directory& inner, CacheOptions options, Clock clock)
    : inner_(inner),
      options_(options),
      clock_(std::move(clock)),
      per_shard_(std::max<std::size_t>(1, options.max_entries / kShards)) {}

std::optional<Lookup<EntryPtr>> CachedDirectory::find(const std::string& key,
                                                      std::chrono::steady_clock::time_point now) {
  Shard& shard = shard_of(key);
  const std::lock_guard lock(shard.mutex);
  const auto it = shard.map.find(key);
  if (it == shard.map.end()) return std::nullopt;
  if (it->second.expires <= now) {
    shard.lru.erase(it->second.lru);
    shard.map.erase(it);
    return std::nullopt;
  }
  shard.lru.splice(shard.lru.begin(), shard.lru, it->second.lru);
  return it->second.answer;
}

void CachedDirectory::store(std::string key, const Lookup<EntryPtr>& answer,
                            std::chrono::steady_clock::time_point now) {
  if (answer.is_trouble()) return;  // the next lookup must ask again
  const auto ttl = answer.is_found() ? options_.positive_ttl : options_.negative_ttl;
  if (ttl.count() == 0) return;
  Shard& shard = shard_of(key);
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
}

template <typename Fetch>
Lookup<EntryPtr> CachedDirectory::cached(std::string key, Fetch fetch) {
  const auto now = clock_();
  if (auto hit = find(key, now)) {
    hits_.fetch_add(1, std::memory_order_relaxed);
    return std::move(*hit);
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  // Not under a lock: a slow directory must not stall lookups of other keys. Two threads missing the same
  // key both ask; the second answer simply replaces the first.
  Lookup<EntryPtr> answer = fetch();
  store(std::move(key), answer, now);
  return answer;
}

std::vector<Lookup<EntryPtr>> CachedDirectory::entries_by_dn(std::span<const std::string> dns) {
  const auto now = clock_();
  std::vector<std::optional<Lookup<EntryPtr>>> found(dns.size());
  std::vector<std::string> missing;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < dns.size(); ++i) {
    found[i] = find(key_of('d', dns[i]), now);
    if (found[i]) {
      hits_.fetch_add(1, std::memory_order_relaxed);
    } else {
      misses_.fetch_add(1, std::memory_order_relaxed);
      missing.push_back(dns[i]);
      where.push_back(i);
    }
  }
  if (!missing.empty()) {
    auto answers = inner_.entries_by_dn(missing);
    for (std::size_t j = 0; j < answers.size() && j < where.size(); ++j) {
      store(key_of('d', missing[j]), answers[j], now);
      found[where[j]] = std::move(answers[j]);
    }
  }
  std::vector<Lookup<EntryPtr>> out;
  out.reserve(dns.size());
  for (auto& f : found) {
    out.push_back(f ? std::move(*f)
                    : Lookup<EntryPtr>::trouble(Trouble::temporary("directory gave no answer")));
  }
  return out;
}

Lookup<EntryPtr> CachedDirectory::user_by_mail(std::string_view address) {
  return cached(key_of('m', address), [&] { return inner_.user_by_mail(address); });
}

Lookup<EntryPtr> CachedDirectory::group_by_name(std::string_view name) {
  return cached(key_of('g', name), [&] { return inner_.group_by_name(name); });
}

Lookup<EntryPtr> CachedDirectory::entry_by_dn(std::string_view dn) {
  return cached(key_of('d', dn), [&] { return inner_.entry_by_dn(dn); });
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
