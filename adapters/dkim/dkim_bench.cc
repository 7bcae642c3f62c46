// dkim_bench.cc - CPU time per DKIM verification and per signature of a 10 KB message.
//
//   dkim_bench [iterations]      (default 2000)
//
// Makes an RSA-2048 and an Ed25519 key in memory, signs one 10 KB message with each through Signer, then
// verifies it `iterations` times through Verifier (key served by dns::StaticResolver, so no network time is
// counted) and signs it as many times. Prints microseconds of process CPU time per operation; asserts
// nothing.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "adapters/dkim/dkim.h"
#include "adapters/dns/rdata.h"
#include "adapters/dns/static_resolver.h"

namespace {

using chainmail::dkim::Library;
using chainmail::dkim::Result;
using chainmail::dkim::Signer;
using chainmail::dkim::SigningKey;
using chainmail::dkim::Verifier;

struct Field {
  std::string name, value;
};

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Writes a fresh key as PEM into `dir` and returns its path.
std::string make_key(const std::filesystem::path& dir, const char* name, bool rsa) {
  EVP_PKEY* key = rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048))
                      : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key == nullptr) throw std::runtime_error("key generation failed");
  std::string path = (dir / name).string();
  std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(path.c_str(), "w"), std::fclose);
  const bool ok = out && PEM_write_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  EVP_PKEY_free(key);
  if (!ok) throw std::runtime_error("cannot write " + path);
  return path;
}

std::vector<Field> headers() {
  return {{"Received",
           " from mx.example.net (mx.example.net [192.0.2.7])\r\n\tby mail.example.org; Mon, 2 Jun 2025"},
          {"From", " Alice Example <alice@example.org>"},
          {"To", " Bob <bob@example.net>"},
          {"Subject", " Quarterly figures, as promised"},
          {"Date", " Mon, 02 Jun 2025 10:00:00 +0000"},
          {"Message-ID", " <bench-1@example.org>"},
          {"MIME-Version", " 1.0"},
          {"Content-Type", " text/plain; charset=utf-8"}};
}

std::string body_10k() {
  std::string body;
  for (int i = 0; body.size() < std::size_t{10} * 1024; ++i) {
    body += "Line ";
    body += std::to_string(i);
    body += " of the benchmark body, long enough to look like real text.\r\n";
  }
  return body;
}

std::string sign(Library& lib, const SigningKey& key, const std::vector<Field>& fields,
                 const std::string& body) {
  Signer s(lib, key);
  for (const auto& f : fields) s.header(f.name, f.value);
  s.end_of_headers();
  s.body(body);
  return s.finish();
}

// The same cryptographic work in OpenSSL alone, per message: hash the body, decode the public key from its
// DNS form, verify one signature. A Verifier's time above this is libopendkim's (and our) bookkeeping.
double openssl_floor_us(const std::string& pem_path, const std::string& body, int iterations) {
  std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(pem_path.c_str(), "r"), std::fclose);
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> priv(
      in ? PEM_read_PrivateKey(in.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
  if (!priv) throw std::runtime_error("cannot read " + pem_path);
  const bool ed = EVP_PKEY_get_base_id(priv.get()) == EVP_PKEY_ED25519;
  std::vector<unsigned char> pub(ed ? 32 : static_cast<std::size_t>(i2d_PUBKEY(priv.get(), nullptr)));
  std::size_t pub_size = pub.size();
  unsigned char* out = pub.data();
  if (ed ? EVP_PKEY_get_raw_public_key(priv.get(), pub.data(), &pub_size) != 1
         : i2d_PUBKEY(priv.get(), &out) <= 0)
    throw std::runtime_error("cannot encode the public key");

  unsigned char digest[32];
  unsigned int digest_size = 0;
  EVP_Digest(body.data(), body.size(), digest, &digest_size, EVP_sha256(), nullptr);
  std::vector<unsigned char> sig(static_cast<std::size_t>(EVP_PKEY_get_size(priv.get())));
  std::size_t sig_size = sig.size();
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> sctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (EVP_DigestSignInit(sctx.get(), nullptr, ed ? nullptr : EVP_sha256(), nullptr, priv.get()) != 1 ||
      EVP_DigestSign(sctx.get(), sig.data(), &sig_size, digest, digest_size) != 1)
    throw std::runtime_error("cannot sign");

  const double start = cpu_seconds();
  for (int i = 0; i < iterations; ++i) {
    EVP_Digest(body.data(), body.size(), digest, &digest_size, EVP_sha256(), nullptr);
    const unsigned char* p = pub.data();
    std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
        ed ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, pub.data(), pub_size)
           : d2i_PUBKEY(nullptr, &p, static_cast<long>(pub.size())),
        EVP_PKEY_free);
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!key ||
        EVP_DigestVerifyInit(ctx.get(), nullptr, ed ? nullptr : EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestVerify(ctx.get(), sig.data(), sig_size, digest, digest_size) != 1)
      throw std::runtime_error("OpenSSL verification failed");
  }
  return (cpu_seconds() - start) * 1e6 / iterations;
}

void run(const char* label, Library& lib, const SigningKey& key, const std::string& pem_path,
         int iterations) {
  const auto fields = headers();
  const std::string body = body_10k();
  std::string value;  // as a verifier receives it: CRLF folding
  for (const char c : sign(lib, key, fields, body)) {
    if (c == '\n') value.push_back('\r');
    value.push_back(c);
  }

  double start = cpu_seconds();
  for (int i = 0; i < iterations; ++i) {
    Verifier v(lib);
    v.header("DKIM-Signature", value);
    for (const auto& f : fields) v.header(f.name, f.value);
    v.end_of_headers();
    v.body(body);
    const auto results = v.finish();
    if (results.size() != 1 || results[0].result != Result::pass)
      throw std::runtime_error("verification failed");
  }
  const double verify_us = (cpu_seconds() - start) * 1e6 / iterations;

  start = cpu_seconds();
  for (int i = 0; i < iterations; ++i) (void)sign(lib, key, fields, body);
  const double sign_us = (cpu_seconds() - start) * 1e6 / iterations;
  const double floor_us = openssl_floor_us(pem_path, body, iterations);
  std::printf(
      "%-15s body %zu bytes: verify %7.1f us CPU, sign %7.1f us CPU; OpenSSL alone (hash, key decode, "
      "verify) %6.1f us (%d iterations)\n",
      label, body.size(), verify_us, sign_us, floor_us, iterations);
}

}  // namespace

int main(int argc, char** argv) {
  const long requested = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 2000;
  const int iterations = static_cast<int>(std::clamp(requested, 1L, 1000000L));
  std::string dir_template =
      (std::filesystem::temp_directory_path() / "chainmail-dkim-bench-XXXXXX").string();
  if (mkdtemp(dir_template.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::filesystem::path dir = dir_template;
  int status = 0;
  try {
    const std::string rsa_path = make_key(dir, "rsa.pem", true);
    const std::string ed_path = make_key(dir, "ed.pem", false);
    chainmail::dns::StaticResolver zone;
    zone.add("rsa._domainkey.example.org", chainmail::dns::RrType::txt,
             chainmail::dns::encode_txt(chainmail::dkim::public_key_record(rsa_path)));
    zone.add("ed._domainkey.example.org", chainmail::dns::RrType::txt,
             chainmail::dns::encode_txt(chainmail::dkim::public_key_record(ed_path)));
    Library lib(zone, {});
    run("rsa-sha256/2048", lib, chainmail::dkim::load_signing_key("example.org", "rsa", rsa_path), rsa_path,
        iterations);
    run("ed25519-sha256", lib, chainmail::dkim::load_signing_key("example.org", "ed", ed_path), ed_path,
        iterations);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dkim_bench: %s\n", e.what());
    status = 1;
  }
  std::filesystem::remove_all(dir);
  return status;
}
