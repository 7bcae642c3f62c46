// tls.h: a throw-away self-signed server certificate for tests and the demo (Dovecot IMAP, Postfix 465/587).
//
//   TlsCert cert;                       // RSA 2048, CN=localhost, SAN DNS:localhost + IP:127.0.0.1, 2 days
//   cert.cert_file(), cert.key_file()   // PEM files in the object's own TempDir (removed with it)
//
// Made with the openssl command line (`openssl req -x509 -newkey rsa:2048 -nodes`), once per object: tests
// make one per suite. The certificate is its own CA, so a client that wants to verify it can load
// cert_file() as the CA file. The folder is mode 0700: Postfix and Dovecot read the key as root before they
// drop privileges, as they do in production.
//
// DIAGNOSTICS: the constructor throws std::runtime_error with openssl's stderr when it fails.
#pragma once

#include <filesystem>
#include <string>

#include "harness/temp_dir.h"

namespace chainmail::harness {

struct TlsCertOptions {
  std::string common_name = "localhost";
  int days = 2;
};

class TlsCert {
 public:
  TlsCert() : TlsCert(TlsCertOptions{}) {}
  explicit TlsCert(const TlsCertOptions& options);

  const std::filesystem::path& cert_file() const { return cert_; }  // PEM certificate (also the CA)
  const std::filesystem::path& key_file() const { return key_; }    // PEM private key, unencrypted
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  std::filesystem::path cert_;
  std::filesystem::path key_;
};

}  // namespace chainmail::harness
