// mta.h: a full Postfix instance built from conf/postfix/{main,master}.cf.in, owned by the test.
//
//   MtaOptions options;
//   options.milter = milter.postfix_socket();               // "" runs without a milter
//   options.socketmap = "inet:127.0.0.1:" + port;
//   options.lmtp_socket = dovecot.lmtp_socket();
//   options.main_cf["defer_transports"] = "smtp";           // postconf -e after the template
//   Mta mta;
//   mta.start(options);                                      // smtpd on 127.0.0.1:mta.smtp_port()
//   ... send to 127.0.0.1:mta.smtp_port() (or submission_port(), daemon name ORIGINATING) ...
//   mta.wait_for_log("ABC123: removed", 5s);
//   mta.queue();                                             // postqueue -j, one entry per message
//
//   TlsCert cert;                                            // submission as in production (conf/postfix):
//   options.submission = MtaSubmission{cert.cert_file(), cert.key_file(), dovecot_auth_client};
//   ... 127.0.0.1:mta.submission_port() needs STARTTLS + AUTH, submissions_port() is implicit TLS ...
//
// Without options.submission, the submission listener is what the milter suites need: clients in
// mynetworks submit without TLS or AUTH (master.cf options overridden with postconf -P), the 465 listener is
// commented out, and port 25 offers no TLS.
//
// Layout (HOST-NOTES): config/, queue/ and data/ are siblings in the TempDir; data/ is left for Postfix to
// create. The templates' @VARS@ are filled from MtaOptions, then main_cf is applied with `postconf -e` and
// master_cf with `postconf -P` (service/type/parameter=value), as an operator would. Test speed settings
// (queue_run_delay = 1s, minimal_backoff_time = 1s, ...) are applied first, so main_cf can override them.
//
// The master daemon runs as our child (`master -s`, what `postfix start-fg` runs after `postfix check`), so
// stop() is SIGTERM to the pid we started; the kernel kills it if the test dies (Process). The mail log is
// written by postlogd to maillog_path().
//
// DIAGNOSTICS: start() throws std::runtime_error with postconf's or postfix check's output, or the tail of
// the mail log when the master exits or the listeners do not answer in time.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/process.h"
#include "harness/temp_dir.h"

namespace chainmail::harness {

// Submission as conf/postfix configures it: TLS required, AUTH through Dovecot, senders checked against
// chainmail's socketmap map "senders" (MtaOptions::socketmap).
struct MtaSubmission {
  std::filesystem::path cert_file;  // PEM server certificate (harness/tls.h TlsCert)
  std::filesystem::path key_file;
  std::string sasl_path;  // Dovecot's auth-client listener: inet:127.0.0.1:PORT or an absolute unix path
};

struct MtaOptions {
  std::filesystem::path
      conf_dir;           // Holds main.cf.in and master.cf.in; empty means source_dir()/conf/postfix.
  std::string milter;     // Postfix syntax: inet:127.0.0.1:PORT or unix:PATH; empty: no milter.
  std::string socketmap;  // chainmail's socketmap (virtual_alias_maps); empty: no alias table.
  std::filesystem::path lmtp_socket;  // Dovecot's LMTP socket (virtual_transport).
  std::string myhostname = "mx.chainmail.test";
  std::string main_domain = "pydis.wtf";
  std::vector<std::string> hosted_domains = {"pydis.wtf", "pydis.com", "pythondiscord.com", "owlcorp.uk",
                                             "int.pydis.wtf"};
  std::string mailbox_domain = "localhost";
  std::string service_domain = "service-mail.localhost";
  std::string relayhost;  // Empty: a loopback port where nothing listens, so relayed mail stays deferred.
  std::string service_user = "nobody";
  std::string service_mail = "/bin/true";  // the pipe's program (chainmail-service-mail's flags follow it)
  std::filesystem::path chainmail_conf = "/dev/null";  // its --config
  std::optional<MtaSubmission> submission;     // Unset: open submission for mynetworks, no TLS (above).
  std::map<std::string, std::string> main_cf;  // postconf -e NAME=VALUE, after the template
  std::vector<std::string> master_cf;          // postconf -P SERVICE/TYPE/PARAMETER=VALUE; "@SMTPD@" and
                                               // "@SUBMISSION@" stand for the two listeners' service names
                                               // ("@SUBMISSIONS@": the implicit-TLS one)
};

// One message in `postqueue -j`.
struct QueuedMessage {
  std::string queue_name;  // "active", "deferred", "hold", "incoming", "maildrop"
  std::string queue_id;
  std::string sender;
  std::vector<std::string> recipients;
  std::vector<std::string> delay_reasons;  // parallel to recipients
};

class Mta {
 public:
  Mta();

  void start(const MtaOptions& options = {});  // Fresh configuration and free ports; keeps the queue.
  void stop();                                 // SIGTERM to the master; no-op when not running.
  bool running() { return process_.running(); }

  std::uint16_t smtp_port() const { return smtp_port_; }
  std::uint16_t submission_port() const { return submission_port_; }
  std::uint16_t submissions_port() const { return submissions_port_; }  // implicit TLS (465's role)
  std::string smtp_server() const;                                      // "127.0.0.1:PORT"
  std::string submission_server() const;                                // "127.0.0.1:PORT"
  std::string submissions_server() const;  // "127.0.0.1:PORT"; listens only with options.submission
  const std::filesystem::path& config_dir() const { return config_dir_; }
  const std::filesystem::path& queue_dir() const { return queue_dir_; }
  const std::filesystem::path& maillog_path() const { return maillog_path_; }

  std::string maillog() const;  // The whole mail log so far ("" before the first line).
  bool wait_for_log(std::string_view needle, std::chrono::milliseconds timeout) const;

  // The Postfix tools, with -c config_dir().
  RunResult postqueue(const std::vector<std::string>& args) const;
  RunResult postsuper(const std::vector<std::string>& args) const;
  RunResult postcat(const std::vector<std::string>& args) const;
  RunResult postconf(const std::vector<std::string>& args) const;
  // sendmail -C config_dir() ARGS < message: the pickup path (postdrop, pickup, cleanup-originating).
  RunResult sendmail(const std::vector<std::string>& args, std::string_view message) const;

  std::vector<QueuedMessage> queue() const;  // postqueue -j; throws std::runtime_error when it fails
  std::optional<QueuedMessage> queued(std::string_view queue_id) const;
  // The message as stored (headers and body, no envelope): postcat -h -b -q ID. Empty when not queued.
  std::string queued_message(std::string_view queue_id) const;
  // The envelope records (postcat -e -q ID), for ORCPT (dsn_orig_rcpt) and original_recipient.
  std::string queued_envelope(std::string_view queue_id) const;
  void flush() const;  // postqueue -f: deliver deferred mail now

 private:
  std::map<std::string, std::string, std::less<>> template_values(const MtaOptions& options) const;
  void configure(const MtaOptions& options);

  TempDir dir_;
  std::filesystem::path config_dir_;
  std::filesystem::path queue_dir_;
  std::filesystem::path maillog_path_;
  std::uint16_t smtp_port_ = 0;
  std::uint16_t submission_port_ = 0;
  std::uint16_t submissions_port_ = 0;
  bool submissions_enabled_ = false;
  Process process_;
};

}  // namespace chainmail::harness
