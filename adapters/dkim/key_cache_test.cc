// key_cache_test.cc - KeyCache, and the d2i_PUBKEY_bio() and PEM_read_bio_PrivateKey() replacements that
// dkim_test links (so every libopendkim verification and signature in dkim_test.cc also runs through them:
// without the private key cache, libopendkim's Ed25519 leak fails those tests under LeakSanitizer).
#include "adapters/dkim/key_cache.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

namespace chainmail::dkim {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

// A fresh P-256 key's SubjectPublicKeyInfo (quick to make; the cache does not care about the algorithm).
std::string new_public_der() {
  const Pkey key(EVP_EC_gen("P-256"));
  EXPECT_TRUE(key);
  unsigned char* out = nullptr;
  const int len = i2d_PUBKEY(key.get(), &out);
  EXPECT_GT(len, 0);
  std::string der(reinterpret_cast<const char*>(out), static_cast<std::size_t>(len));
  OPENSSL_free(out);
  return der;
}

EVP_PKEY* decode(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));  // NOLINT(google-runtime-int)
}

TEST(KeyCache, DecodesOnceAndHandsOutReferences) {
  KeyCache cache(4);
  const auto der = new_public_der();
  int decodes = 0;
  auto counted = [&] {
    ++decodes;
    return decode(der);
  };
  const Pkey first(cache.get(der, counted));
  const Pkey second(cache.get(der, counted));
  ASSERT_TRUE(first);
  EXPECT_EQ(first.get(), second.get());
  EXPECT_EQ(decodes, 1);
  EXPECT_EQ(cache.hits(), 1U);
  EXPECT_EQ(cache.misses(), 1U);
  // The caller's references outlive the cache's own.
}

TEST(KeyCache, EvictsTheLeastRecentlyUsedAndKeepsNoFailures) {
  KeyCache cache(2);
  const auto a = new_public_der();
  const auto b = new_public_der();
  const auto c = new_public_der();
  int decodes = 0;
  auto get = [&](const std::string& der) {
    return Pkey(cache.get(der, [&] {
      ++decodes;
      return decode(der);
    }));
  };
  get(a);
  get(b);
  get(a);  // a is now the most recent
  get(c);  // evicts b
  EXPECT_EQ(cache.size(), 2U);
  EXPECT_EQ(decodes, 3);
  get(a);
  EXPECT_EQ(decodes, 3);
  get(b);
  EXPECT_EQ(decodes, 4);

  int failures = 0;
  const std::string garbage = "not DER at all";
  for (int i = 0; i < 2; ++i) {
    EXPECT_FALSE(cache.get(garbage, [&] {
      ++failures;
      return decode(garbage);
    }));
  }
  EXPECT_EQ(failures, 2);
  const std::string huge(KeyCache::kMaxCachedDer + 1, 'x');
  EXPECT_FALSE(cache.get(huge, [] { return static_cast<EVP_PKEY*>(nullptr); }));
  EXPECT_EQ(cache.size(), 2U);
}

TEST(KeyCache, RetiresAnEntryAfterMaxUses) {
  KeyCache cache(4, 3);
  const auto der = new_public_der();
  int decodes = 0;
  std::vector<Pkey> held;
  held.reserve(8);
  for (int i = 0; i < 8; ++i) {
    held.emplace_back(cache.get(der, [&] {
      ++decodes;
      return decode(der);
    }));
  }
  // Decoded, then handed out from the cache 3 times, retired; again, again.
  EXPECT_EQ(decodes, 2);
  EXPECT_EQ(held[0].get(), held[3].get());
  EXPECT_NE(held[3].get(), held[4].get());
  EXPECT_EQ(held[4].get(), held[7].get());
}

TEST(KeyCache, ReplacesLibopendkimsPrivateKeyLoad) {
  const Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  ASSERT_TRUE(key);
  const Bio out(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(out.get(), &data);  // NOLINT(google-runtime-int)
  const std::string pem(data, static_cast<std::size_t>(len));
  auto load = [&] {
    const Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    return Pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  };
  const Pkey one = load();
  const Pkey two = load();
  ASSERT_TRUE(one);
  EXPECT_EQ(one.get(), two.get());
  EXPECT_EQ(EVP_PKEY_eq(one.get(), key.get()), 1);
}

// The replacement is active in this executable: libopendkim's exact call is answered from the cache.
TEST(KeyCache, ReplacesLibopendkimsDecodeCall) {
  const auto der = new_public_der();
  auto via_bio = [&] {
    const Bio bio(BIO_new_mem_buf(der.data(), static_cast<int>(der.size())));
    return Pkey(d2i_PUBKEY_bio(bio.get(), nullptr));
  };
  const auto before = process_key_cache().hits();
  const Pkey one = via_bio();
  const Pkey two = via_bio();
  ASSERT_TRUE(one);
  EXPECT_EQ(one.get(), two.get());
  EXPECT_EQ(process_key_cache().hits(), before + 1);
  const Pkey fresh(decode(der));
  EXPECT_EQ(EVP_PKEY_eq(one.get(), fresh.get()), 1);

  // Any other form of the call is libcrypto's own: a fresh key each time.
  const Bio b1(BIO_new_mem_buf(der.data(), static_cast<int>(der.size())));
  const Bio b2(BIO_new_mem_buf(der.data(), static_cast<int>(der.size())));
  EVP_PKEY* out1 = nullptr;
  EVP_PKEY* out2 = nullptr;
  const Pkey p1(d2i_PUBKEY_bio(b1.get(), &out1));
  const Pkey p2(d2i_PUBKEY_bio(b2.get(), &out2));
  ASSERT_TRUE(p1);
  EXPECT_NE(p1.get(), p2.get());
  // And a truncated key is refused as before.
  const Bio bad(BIO_new_mem_buf(der.data(), static_cast<int>(der.size() / 2)));
  EXPECT_FALSE(Pkey(d2i_PUBKEY_bio(bad.get(), nullptr)));
}

}  // namespace
}  // namespace chainmail::dkim
