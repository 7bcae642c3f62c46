// key_cache.h - decoded DKIM keys, kept for the next message signed or verified with the same key.
//
// libopendkim decodes the public key of every signature it verifies, on every message, with
// d2i_PUBKEY_bio() (dkim.c, dkim_sig_process). On OpenSSL 3.0 (Debian 12) each such call builds a decoder
// context by walking every provider's decoders under a global lock; in bench/milter that was 28% of the
// milter's whole CPU, against 5% for the RSA verification itself. libopendkim has no hook to hand it a key,
// so key_cache_interpose.cc takes the place of d2i_PUBKEY_bio() in the executables that link it
// (chainmail-milter, dkim_test) and answers from a KeyCache.
//
// Signing has the same cost (libopendkim parses the PEM private key for every signature, dkim.c
// dkim_privkey_load) and a leak besides: libopendkim 2.11 never frees an Ed25519 signature's key material
// (dkim_free() releases RSA's only), about 480 bytes per signed message, of which 416 are the EVP_PKEY.
// PEM_read_bio_PrivateKey() is answered from a second cache, so the key libopendkim then forgets is a
// reference to the cached key, not memory of its own; its own 64-byte block is still lost (dkim_test
// suppresses exactly that). Those forgotten references only ever raise the key's reference count, so an
// entry is handed out at most `max_uses` times and then replaced by a fresh decode.
//
// A cache is keyed by the encoded key itself (DER, or PEM text for private keys), not by selector or domain:
// the same bytes always decode to the same key, so a hit can never be stale or wrong, a rotated key is simply
// a new entry, and a forged or changed key record cannot reach another record's entry. A failed decode is not
// cached (it costs what it cost before). Least recently used entries go first once `capacity` keys are held;
// an encoding larger than kMaxCachedDer is never cached.
//
// Thread safety: get() may be called from any thread. The EVP_PKEY handed out is shared (reference-counted):
// callers only use it (libopendkim verifies or signs with it), which OpenSSL allows across threads.
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

class KeyCache {
 public:
  static constexpr std::size_t kMaxCachedDer = 8192;  // an RSA-16384 key's SubjectPublicKeyInfo fits

  // max_uses 0: an entry is handed out any number of times.
  explicit KeyCache(std::size_t capacity, std::uint64_t max_uses = 0)
      : capacity_(capacity), max_uses_(max_uses) {}
  ~KeyCache();
  KeyCache(const KeyCache&) = delete;
  KeyCache& operator=(const KeyCache&) = delete;

  // The key `der` (the encoded key: DER or PEM text) decodes to, as a new reference the caller frees with
  // EVP_PKEY_free(). On a miss `decode` is called (without the lock held) and a non-null result is kept.
  // nullptr when decode returns nullptr.
  EVP_PKEY* get(std::string_view der, const std::function<EVP_PKEY*()>& decode);

  std::size_t size() const;
  std::uint64_t hits() const;
  std::uint64_t misses() const;

 private:
  struct Entry {
    std::string der;
    EVP_PKEY* key;
    std::uint64_t uses = 0;
  };

  const std::size_t capacity_;
  const std::uint64_t max_uses_;
  mutable std::mutex mutex_;
  std::list<Entry> entries_;                                                // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into entries_' der
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

// The process's caches, used by the replacements of d2i_PUBKEY_bio() (public keys, 1024) and of
// PEM_read_bio_PrivateKey() (private keys, 64, each handed out at most 2^20 times). Never destroyed: freeing
// keys at exit would race with OpenSSL's own exit-time cleanup and with threads still verifying, and the keys
// stay reachable (no leak report).
KeyCache& process_key_cache();
KeyCache& process_private_key_cache();

}  // namespace chainmail::dkim
