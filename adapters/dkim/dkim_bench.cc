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
  for (int i = 0; body.size() < std::size_t{10} * 1024; ++i)
    body += "Line " + std::to_string(i) + " of the benchmark body, long enough to look like real text.\r\n";
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

void run(const char* label, Library& lib, const SigningKey& key, int iterations) {
  const auto fields = headers();
  const std::string body = body_10k();
  std::string value = sign(lib, key, fields, body);
  for (std::size_t at = 0; (at = value.find('\n', at)) != std::string::npos; at += 2) value.insert(at, "\r");

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
  std::printf("%-15s body %zu bytes: verify %7.1f us CPU, sign %7.1f us CPU (%d iterations)\n", label,
              body.size(), verify_us, sign_us, iterations);
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
    run("rsa-sha256/2048", lib, chainmail::dkim::load_signing_key("example.org", "rsa", rsa_path),
        iterations);
    run("ed25519-sha256", lib, chainmail::dkim::load_signing_key("example.org", "ed", ed_path), iterations);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dkim_bench: %s\n", e.what());
    status = 1;
  }
  std::filesystem::remove_all(dir);
  return status;
}
