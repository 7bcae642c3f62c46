// key_cache_interpose.cc - d2i_PUBKEY_bio() and PEM_read_bio_PrivateKey() answered from the process's key
// caches (key_cache.h).
//
// Linked into an executable (never into a library), these definitions take the place of libcrypto's for
// every caller that binds them dynamically, libopendkim among them: an unversioned definition in the
// executable satisfies libopendkim's d2i_PUBKEY_bio@OPENSSL_3.0.0 reference, as milter/libmilter_signals.cc
// does for sigwait(). Only the exact calls libopendkim makes are cached: a memory BIO, no output pointer and
// no password callback (d2i_PUBKEY_bio(BIO_new_mem_buf(der, len), NULL) and PEM_read_bio_PrivateKey(bio,
// NULL, NULL, NULL)). Every other call, and any internal trouble, goes to libcrypto's own function unchanged,
// so the behaviour is OpenSSL's in every case; only the cost (and libopendkim's Ed25519 leak) differs.
#include <dlfcn.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <string_view>

#include "adapters/dkim/key_cache.h"

namespace {

using D2iPubkeyBio = EVP_PKEY* (*)(BIO*, EVP_PKEY**);
using PemReadBioPrivateKey = EVP_PKEY* (*)(BIO*, EVP_PKEY**, pem_password_cb*, void*);

// libcrypto's own `name`: the version libcrypto 3 defines it under, else unversioned.
template <typename Fn>
Fn real(const char* name) {
  void* sym = dlvsym(RTLD_NEXT, name, "OPENSSL_3.0.0");
  if (sym == nullptr) sym = dlsym(RTLD_NEXT, name);
  return reinterpret_cast<Fn>(sym);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
}

D2iPubkeyBio real_d2i_pubkey_bio() {
  static const auto fn = real<D2iPubkeyBio>("d2i_PUBKEY_bio");
  return fn;
}

PemReadBioPrivateKey real_pem_read_bio_private_key() {
  static const auto fn = real<PemReadBioPrivateKey>("PEM_read_bio_PrivateKey");
  return fn;
}

// The whole content of a memory BIO, or an empty view for any other BIO.
std::string_view mem_bio_content(BIO* bp) {
  if (bp == nullptr || BIO_method_type(bp) != BIO_TYPE_MEM) return {};
  char* data = nullptr;
  const long len = BIO_get_mem_data(bp, &data);  // NOLINT(google-runtime-int): OpenSSL's type
  if (len <= 0 || data == nullptr) return {};
  return {data, static_cast<std::size_t>(len)};
}

}  // namespace

extern "C" EVP_PKEY* d2i_PUBKEY_bio(BIO* bp, EVP_PKEY** a) {
  const D2iPubkeyBio real_fn = real_d2i_pubkey_bio();
  if (real_fn == nullptr) return nullptr;  // cannot happen with libcrypto loaded; fail as a bad key would
  const std::string_view der = a == nullptr ? mem_bio_content(bp) : std::string_view{};
  if (der.empty()) return real_fn(bp, a);
  try {
    return chainmail::dkim::process_key_cache().get(der, [&] { return real_fn(bp, a); });
  } catch (...) {  // out of memory in the cache: decode as if there were none
    return real_fn(bp, a);
  }
}

extern "C" EVP_PKEY* PEM_read_bio_PrivateKey(BIO* bp, EVP_PKEY** x, pem_password_cb* cb, void* u) {
  const PemReadBioPrivateKey real_fn = real_pem_read_bio_private_key();
  if (real_fn == nullptr) return nullptr;
  const std::string_view pem =
      x == nullptr && cb == nullptr && u == nullptr ? mem_bio_content(bp) : std::string_view{};
  if (pem.empty()) return real_fn(bp, x, cb, u);
  try {
    return chainmail::dkim::process_private_key_cache().get(pem, [&] { return real_fn(bp, x, cb, u); });
  } catch (...) {
    return real_fn(bp, x, cb, u);
  }
}
