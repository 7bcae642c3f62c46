// cached_resolver.h - a bounded, thread-safe DNS answer cache in front of another Resolver; itself a
// Resolver.
//
//   UnboundResolver unbound(options);
//   CachedResolver resolver(unbound, CacheOptions{});
//   Answer a = resolver.resolve("example.org", RrType::txt);  // a repeat is answered from memory
//
// Why: every UnboundResolver query is a round trip through libunbound's worker thread (pipes, epoll, futex
// wake-ups), even when libunbound answers from its own cache. The milter asks the same SPF/DKIM/DMARC names
// over and over; a hit here costs a hash lookup under a shard mutex and a copy of the answer, no system call.
//
// What is kept, and how long: found answers for min(Answer::ttl, max_ttl_s) seconds; nodata/nxdomain for
// min(Answer::ttl, negative_ttl_s). An answer with ttl 0 is not kept, and trouble is never kept (the next
// lookup asks again). The key is the lower-cased name without its trailing dot, plus the type, so
// "Example.ORG." and "example.org" share an entry. A hit returns a copy of the stored answer with `ttl` set
// to the whole seconds it still has to live. Concurrent misses for one key may both ask `next`; the later
// answer replaces the earlier.
//
// SECURITY: names and record data come from senders' DNS, so memory is bounded twice: at most max_entries
// answers and at most max_bytes of names plus rdata, both split evenly over 16 shards, each evicting its
// least recently used answer. An answer larger than one shard's byte share is passed through and not kept.
// TTLs are capped by max_ttl_s / negative_ttl_s, so a hostile zone cannot pin an answer for long.
//
// DIAGNOSTICS: none of its own; answers (including trouble and its `why`) pass through unchanged except ttl.
// hits() and misses() count resolve() calls answered from memory and passed on.
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
#include <string_view>
#include <unordered_map>

#include "adapters/dns/resolver.h"

namespace chainmail::dns {

struct CacheOptions {
  std::size_t max_entries = 20000;                // answers kept, over all shards
  std::size_t max_bytes = std::size_t{32} << 20;  // names + rdata kept, over all shards
  std::uint32_t max_ttl_s = 3600;                 // cap for found answers
  std::uint32_t negative_ttl_s = 60;              // cap for nodata / nxdomain
};

class CachedResolver final : public Resolver {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `next` must outlive the cache. `clock` is for tests.
  CachedResolver(Resolver& next, CacheOptions options, Clock clock = std::chrono::steady_clock::now);

  Answer resolve(std::string_view name, RrType type) override;  // thread-safe

  std::size_t hits() const { return hits_.load(std::memory_order_relaxed); }
  std::size_t misses() const { return misses_.load(std::memory_order_relaxed); }
  std::size_t size();  // answers held now (expired ones included until they are looked up or evicted)

 private:
  struct Slot {
    Answer answer;
    std::chrono::steady_clock::time_point expires;
    std::size_t bytes = 0;
    std::list<std::string>::iterator lru;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Slot> map;
    std::list<std::string> lru;  // front: most recently used
    std::size_t bytes = 0;
  };
  static constexpr std::size_t kShards = 16;

  Shard& shard_of(std::size_t hash) { return shards_[hash % kShards]; }
  std::optional<Answer> find(const std::string& key, std::size_t hash,
                             std::chrono::steady_clock::time_point now);
  void store(std::string key, std::size_t hash, const Answer& answer,
             std::chrono::steady_clock::time_point now);
  static void erase(Shard& shard, std::unordered_map<std::string, Slot>::iterator it);

  Resolver& next_;
  CacheOptions options_;
  Clock clock_;
  std::size_t entries_per_shard_;
  std::size_t bytes_per_shard_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> hits_{0};
  std::atomic<std::size_t> misses_{0};
};

}  // namespace chainmail::dns
