// cached_directory.h - a bounded, thread-safe cache in front of a directory; itself a directory.
//
// Found entries live positive_ttl, "not found" answers negative_ttl; trouble is never cached (the next
// lookup asks again). At most max_entries answers are kept, split over shards with their own locks so that
// many milter threads do not queue on one mutex; each shard evicts its least recently used answer.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/directory.h"

namespace chainmail {

struct CacheOptions {
  std::size_t max_entries = 100000;
  std::chrono::seconds positive_ttl{60};
  std::chrono::seconds negative_ttl{10};
};

class CachedDirectory : public Directory {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `inner` must outlive the cache. `clock` is for tests.
  CachedDirectory(Directory& inner, CacheOptions options, Clock clock = std::chrono::steady_clock::now);

  Lookup<EntryPtr> user_by_mail(std::string_view address) override;
  Lookup<EntryPtr> group_by_name(std::string_view name) override;
  Lookup<EntryPtr> entry_by_dn(std::string_view dn) override;
  // Answers what it holds and asks the inner directory for the rest in one batch.
  std::vector<Lookup<EntryPtr>> entries_by_dn(std::span<const std::string> dns) override;

  std::uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  std::uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  std::size_t size();

 private:
  struct Slot {
    Lookup<EntryPtr> answer;
    std::chrono::steady_clock::time_point expires;
    std::list<std::string>::iterator lru;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Slot> map;
    std::list<std::string> lru;  // front: most recently used
  };
  static constexpr std::size_t kShards = 16;

  template <typename Fetch>
  Lookup<EntryPtr> cached(std::string key, Fetch fetch);
  Shard& shard_of(const std::string& key) { return shards_[std::hash<std::string>{}(key) % kShards]; }
  std::optional<Lookup<EntryPtr>> find(const std::string& key, std::chrono::steady_clock::time_point now);
  void store(std::string key, const Lookup<EntryPtr>& answer, std::chrono::steady_clock::time_point now);

  Directory& inner_;
  CacheOptions options_;
  Clock clock_;
  std::size_t per_shard_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
};

}  // namespace chainmail
