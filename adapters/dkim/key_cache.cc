// key_cache.cc - see key_cache.h.
#include "adapters/dkim/key_cache.h"

namespace chainmail::dkim {

KeyCache::~KeyCache() {
  for (auto& e : entries_) EVP_PKEY_free(e.key);
}

EVP_PKEY* KeyCache::get(std::string_view der, const std::function<EVP_PKEY*()>& decode) {
  if (der.size() > kMaxCachedDer || capacity_ == 0) return decode();
  {
    const std::lock_guard lock(mutex_);
    if (const auto it = index_.find(der); it != index_.end()) {
      const auto entry = it->second;
      entries_.splice(entries_.begin(), entries_, entry);
      ++hits_;
      EVP_PKEY* key = entry->key;
      if (EVP_PKEY_up_ref(key) != 1) return decode();
      if (max_uses_ != 0 && ++entry->uses >= max_uses_) {  // retired: the next caller decodes afresh
        index_.erase(it);
        EVP_PKEY_free(entry->key);
        entries_.erase(entry);
      }
      return key;
    }
    ++misses_;
  }
  // Decoded outside the lock: it is the slow part, and two threads decoding the same new key at once only
  // cost one extra decode (the second finds the first's entry below and keeps its own copy out).
  EVP_PKEY* key = decode();
  if (key == nullptr) return nullptr;
  const std::lock_guard lock(mutex_);
  if (index_.contains(der)) return key;
  if (EVP_PKEY_up_ref(key) != 1) return key;
  entries_.push_front(Entry{std::string(der), key});
  index_.emplace(entries_.front().der, entries_.begin());
  while (entries_.size() > capacity_) {
    index_.erase(entries_.back().der);
    EVP_PKEY_free(entries_.back().key);
    entries_.pop_back();
  }
  return key;
}

std::size_t KeyCache::size() const {
  const std::lock_guard lock(mutex_);
  return entries_.size();
}

std::uint64_t KeyCache::hits() const {
  const std::lock_guard lock(mutex_);
  return hits_;
}

std::uint64_t KeyCache::misses() const {
  const std::lock_guard lock(mutex_);
  return misses_;
}

KeyCache& process_key_cache() {
  static auto* cache = new KeyCache(1024);  // NOLINT(cppcoreguidelines-owning-memory): see key_cache.h
  return *cache;
}

KeyCache& process_private_key_cache() {
  static auto* cache = new KeyCache(64, std::uint64_t{1} << 20);  // NOLINT(cppcoreguidelines-owning-memory)
  return *cache;
}

}  // namespace chainmail::dkim
