// dovecot.h: a full real Dovecot owned by a test: auth through chainmail's plugin (libauthdb_chainmail.so
// from the build tree), IMAP, LMTP, an auth-client listener for Postfix, and doveadm against it.
//
//   Dovecot dovecot;                                   // TempDir; mail_root() exists from here on
//   DovecotOptions o;
//   o.chainmail_config = config;                       // passdb/userdb `chainmail` args ([auth] home under
//   o.ssl_cert = cert; o.ssl_key = key;                //   mail_root(), uid/gid "mail")
//   dovecot.start(o);
//   dovecot.auth_test("alice", "alice-pw");            // doveadm auth test -x no-penalty alice alice-pw
//   dovecot.user("alice");                             // doveadm user alice
//   Postfix: smtpd_sasl_path = <dovecot.auth_client_socket()> or inet:127.0.0.1:<dovecot.auth_port()>
//            virtual_transport = lmtp:unix:<dovecot.lmtp_socket()>
//   imaplib.IMAP4_SSL("127.0.0.1", dovecot.imaps_port()) / IMAP4 + STARTTLS on imap_port()
//
// The configuration is derived from conf/dovecot (10-auth, 10-mail, 10-master, 10-ssl, 20-imap.conf, read
// from the source tree) with its site paths replaced (chainmail.conf, Postfix's auth socket, the
// certificate, the IMAP ports), followed by test settings: base_dir/state_dir/log in the TempDir,
// listen = 127.0.0.1, auth_failure_delay = 0, first_valid_uid = 8 (mail is stored as the system user "mail":
// Dovecot refuses uid 0), an inet auth listener, and an LMTP unix socket. Without a certificate, 10-ssl.conf
// is left out and ssl = no (implicit-TLS IMAP is then off: imaps_port() is 0).
//
// Auth modules load only from /usr/lib/dovecot/modules/auth (HOST-NOTES), so dovecot runs as
//   unshare -m --propagation private sh -c 'mount --bind DIR /usr/lib/dovecot/modules/auth && exec dovecot -F
//   -c CONF'
// with DIR (in the TempDir) holding copies of the stock modules and of the plugin. In a sanitized build the
// test process's libasan/libubsan are preloaded into Dovecot (LD_PRELOAD, import_environment,
// default_vsz_limit = 0), so the plugin runs checked (/work/helper-notes/dovecot-asan.md).
//
// DIAGNOSTICS: start() throws std::runtime_error with the tail of the log when dovecot exits or a listener
// does not appear in time; the plugin's and Dovecot's messages are in log_path().
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/process.h"
#include "harness/temp_dir.h"

namespace chainmail::harness {

struct DovecotOptions {
  std::filesystem::path chainmail_config;  // required: the auth plugin's chainmail.conf
  // Folder holding libauthdb_chainmail.so; empty: <build>/dovecot-modules/auth beside build_bin_dir().
  std::filesystem::path auth_module_dir;
  std::filesystem::path ssl_cert;  // PEM files; both empty: ssl = no
  std::filesystem::path ssl_key;
  bool imap = true;
  bool lmtp = true;
  // Replaces Dovecot's auth_username_chars; "" lets every character reach the plugin (which escapes them).
  std::optional<std::string> auth_username_chars;
  // More conf/dovecot/conf.d files to run, derived the same way (e.g. "20-lmtp.conf"; it then provides the
  // LMTP listener, its production socket path replaced by lmtp_socket()).
  std::vector<std::string> conf_files;
  std::string extra_conf;  // appended last (mail_plugin_dir, plugin { } settings, ...)
  std::chrono::milliseconds start_timeout = std::chrono::seconds(15);
};

class Dovecot {
 public:
  Dovecot();

  void start(const DovecotOptions& options);  // Stops a running one first; keeps mail_root().
  void stop();                                // SIGTERM, SIGKILL after 5 s; no-op when not running.
  bool running() { return process_.running(); }

  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path mail_root() const;                // dir()/mail, owned by "mail": homes go below it
  std::filesystem::path auth_client_socket() const;       // the auth-client listener Postfix uses (unix)
  std::uint16_t auth_port() const { return auth_port_; }  // the same on 127.0.0.1 (inet)
  std::filesystem::path lmtp_socket() const;
  std::uint16_t imap_port() const { return imap_port_; }    // 0 without options.imap
  std::uint16_t imaps_port() const { return imaps_port_; }  // 0 without a certificate
  const std::filesystem::path& log_path() const { return log_path_; }
  const std::filesystem::path& config_path() const { return config_path_; }

  RunResult doveadm(const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  // doveadm auth test (-x no-penalty: Dovecot's auth penalty would delay each attempt after a failure).
  // Exit 0 when the login succeeded; stdout has "auth succeeded" / "auth failed" and the extra fields.
  RunResult auth_test(std::string_view user, std::string_view password) const;
  // doveadm user USER (a mask such as "*" lists users).
  RunResult user(std::string_view user) const;

 private:
  TempDir dir_;
  std::filesystem::path config_path_;
  std::filesystem::path log_path_;
  std::uint16_t auth_port_ = 0;
  std::uint16_t imap_port_ = 0;
  std::uint16_t imaps_port_ = 0;
  Process process_;
};

}  // namespace chainmail::harness
