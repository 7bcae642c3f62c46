// slapd.h: a real OpenLDAP server on a private loopback port, loaded from an LDIF, owned by the test.
//
//   Slapd ldap;
//   ldap.start();                        // conf/ldap/demo.ldif
//   run({"ldapsearch", "-x", "-H", ldap.uri(), ...});
//   ldap.pause(); ... ldap.resume();     // a hung server, as clients see it
//   ldap.restart();                      // same port, same data
//
//   SlapdOptions tls;                    // TLS as well: ldap:// (StartTLS) and ldaps:// on a second port
//   tls.tls = SlapdTls{cert, key, ca};
//   ldap.start(demo_ldif(), tls);        // ldap.tls_uri() is ldaps://127.0.0.1:TLSPORT/
//
// start() writes slapd.conf from conf/ldap/slapd.conf.in (@SCHEMA_DIR@ = that conf/ldap folder, absolute;
// @DB_DIR@ = an empty database folder in the Slapd's TempDir), loads the LDIF with slapadd, and runs
// `slapd -d stats` in the foreground as a child Process, logging to log_path(). With SlapdOptions::tls, the
// TLS directives go into the global section (before `database`) and slapd listens on ldaps:// too; its log
// then shows "TLS established" (and "STARTTLS") per connection.
//
// DIAGNOSTICS: start() throws std::runtime_error with slapadd's output, or with the tail of the slapd log
// when slapd exits or does not answer in time.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "harness/process.h"
#include "harness/temp_dir.h"

namespace chainmail::harness {

// The demo directory in conf/ldap/demo.ldif.
namespace demo {
inline constexpr std::string_view kBase = "dc=box,dc=pydis,dc=wtf";
inline constexpr std::string_view kBindDn = "uid=chainmail,cn=sysaccounts,cn=etc,dc=box,dc=pydis,dc=wtf";
inline constexpr std::string_view kBindPassword = "chainmail-demo";
}  // namespace demo

std::filesystem::path ldap_conf_dir();  // source_dir()/conf/ldap
std::filesystem::path demo_ldif();      // ldap_conf_dir()/demo.ldif

// Server certificate, its key and the CA file for slapd's TLS (TLSCertificateFile, TLSCertificateKeyFile,
// TLSCACertificateFile; an empty ca_file leaves that line out). Relative paths are made absolute.
struct SlapdTls {
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::filesystem::path ca_file;
};

struct SlapdOptions {
  std::filesystem::path conf_dir;  // Holds slapd.conf.in and the schema files; empty means ldap_conf_dir().
  std::chrono::milliseconds start_timeout = std::chrono::seconds(10);
  std::chrono::milliseconds stop_timeout = std::chrono::seconds(5);
  std::optional<SlapdTls> tls;  // Set: TLS configured, StartTLS on uri() and ldaps:// on tls_uri().
};

class Slapd {
 public:
  Slapd();

  // Loads `ldif` into a fresh database and starts slapd on a new free port. Stops a running one first.
  void start(const std::filesystem::path& ldif = demo_ldif(), const SlapdOptions& options = {});
  void stop();     // SIGTERM, SIGKILL after options.stop_timeout; no-op when not running.
  void restart();  // stop(), then slapd again on the same port and database (no reload of the LDIF).
  void pause();    // SIGSTOP: connections are accepted by the kernel, but nothing answers.
  void resume();   // SIGCONT.
  bool running() { return process_.running(); }

  std::string uri() const;  // ldap://127.0.0.1:PORT/
  std::uint16_t port() const { return port_; }
  // ldaps://127.0.0.1:TLSPORT/; throws std::logic_error when not started with SlapdOptions::tls.
  std::string tls_uri() const;
  std::uint16_t tls_port() const { return tls_port_; }  // 0 without TLS
  const std::filesystem::path& log_path() const { return log_path_; }
  const std::filesystem::path& config_path() const { return config_path_; }

 private:
  void launch();

  TempDir dir_;
  SlapdOptions options_;
  std::filesystem::path config_path_;
  std::filesystem::path log_path_;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  Process process_;
};

}  // namespace chainmail::harness
