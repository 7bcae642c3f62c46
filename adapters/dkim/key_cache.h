// key_cache.h - decoded DKIM public keys, kept for the next message signed with the same key.
//
// libopendkim decodes the public key of every signature it verifies, on every message, with
// d2i_PUBKEY_bio() (dkim.c, dkim_sig_process). On OpenSSL 3.0 (Debian 12) each such call builds a decoder
// context by walking every provider's decoders under a global lock; in bench/milter that was 28% of the
// milter's whole CPU, against 5% for the RSA verification itself. libopendkim has no hook to hand it a key,
// so key_cache_interpose.cc takes the place of d2i_PUBKEY_bio() in the executables that link it
// (chainmail-milter, dkim_test) and answers from a PublicKeyCache.
//
// The cache is keyed by the DER bytes themselves, not by selector or domain: the same bytes always decode to
// the same key, so a hit can never be stale or wrong, a rotated key is simply a new entry, and a forged or
// changed key record cannot reach another record's entry. A failed decode is not cached (it costs what it
// cost before). Least recently used entries go first once `capacity` keys are held; DER larger than
// kMaxCachedDer is never cached.
//
// Thread safety: get() may be called from any thread. The EVP_PKEY handed out is shared (reference-counted):
// callers only read it (libopendkim verifies with it and frees its reference), which OpenSSL allows across
// threads.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace chainmail::dkim {

class PublicKeyCache {
 public:
  static constexpr std::size_t kMaxCachedDer = 8192;  // an RSA-16384 key's SubjectPublicKeyInfo fits

  explicit PublicKeyCache(std::size_t capacity) : capacity_(capacity) {}
  ~PublicKeyCache();
  PublicKeyCache(const PublicKeyCache&) = delete;
  PublicKeyCache& operator=(const PublicKeyCache&) = delete;

  // The key `der` decodes to, as a new reference the caller frees with EVP_PKEY_free(). On a miss `decode`
  // is called (without the lock held) and a non-null result is kept. nullptr when decode returns nullptr.
  EVP_PKEY* get(std::string_view der, const std::function<EVP_PKEY*()>& decode);

  std::size_t size() const;
  std::uint64_t hits() const;
  std::uint64_t misses() const;

 private:
  struct Entry {
    std::string der;
    EVP_PKEY* key;
  };

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::list<Entry> entries_;                                                // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into entries_' der
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

// The process's cache, used by the d2i_PUBKEY_bio() replacement (capacity 1024 keys). Never destroyed:
// freeing keys at exit would race with OpenSSL's own exit-time cleanup and with threads still verifying,
// and the keys stay reachable (no leak report).
PublicKeyCache& process_key_cache();

}  // namespace chainmail::dkim
