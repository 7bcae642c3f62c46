// dovecot_lmtp.h: a minimal real Dovecot that speaks LMTP only and stores each user's mail in a Maildir
// under its TempDir, owned by the test.
//
//   DovecotLmtp dovecot;
//   dovecot.start();                                    // `dovecot -F -c dovecot.conf` as a child Process
//   main.cf: virtual_transport = lmtp:unix:<dovecot.lmtp_socket()>
//   dovecot.wait_for_messages("alice", 1, 5s);          // true once Maildir/new+cur hold >= 1 message
//   std::string text = read_file(dovecot.messages("alice").front());
//
// Every recipient is accepted: passdb and userdb are static, the user name is the recipient's local part
// (auth_username_format = %Ln), so alice@localhost is user "alice" with Maildir mail/alice/Maildir.
//
// Mail is stored as the system user "mail" (uid 8): Dovecot refuses uid 0 for mail storage. Because that
// user, and Postfix's lmtp client (user postfix), must reach the socket and the Maildirs, the TempDir is made
// traversable (0711) and mail/ belongs to "mail". ssl = no, auth_failure_delay = 0, logging to
// dovecot.log in the TempDir.
//
// With DovecotLmtpOptions, the same Dovecot loads mail plugins from a folder of the build tree
// (mail_plugin_dir; only those plugins are then visible), with plugin { } settings and per-user userdb extra
// fields (a passwd-file userdb in front of the static one):
//
//   DovecotLmtpOptions o;
//   o.mail_plugin_dir = build/dovecot-plugin/lmtp; o.mail_plugins = "chainmail_lmtp";
//   o.plugin_settings = {{"chainmail_config", conf}}; o.user_fields = {{"bob", "chainmail_no_folders=yes"}};
//   dovecot.start(o);
//   dovecot.messages("alice", "devops");                 // Maildir/.devops (Maildir++ folders)
//
// Sieve (Pigeonhole's lda-sieve plugin, added to the LMTP mail_plugins) is on when sieve_scripts or
// sieve_plugin_dir is set: each listed user gets that text as the active personal script (~/.dovecot.sieve),
// and Pigeonhole loads its sieve_plugins from sieve_plugin_dir; other Sieve settings go in plugin_settings.
// When mail_plugin_dir is set too, the harness links Dovecot's own lib90_sieve_plugin.so beside that
// folder's plugins (in modules/ of the TempDir), because mail_plugin_dir hides the stock plugins:
//
//   o.sieve_plugin_dir = build/sieve-ext;
//   o.plugin_settings = {{"sieve_plugins", "sieve_chainmail"}, {"sieve_extensions", "+vnd.chainmail"}};
//   o.sieve_scripts = {{"alice", "require \"fileinto\"; fileinto \"X\";"}};
//
// A sanitizer build loads its plugins into the (uninstrumented) Dovecot with LD_PRELOAD of the test's own
// libasan and libubsan (ASAN_OPTIONS detect_leaks=0: Dovecot's exit-time allocations are not ours), passed to
// Dovecot's children with import_environment. Without plugins nothing is preloaded.
//
// DIAGNOSTICS: start() throws std::runtime_error with the tail of the log when dovecot exits or its LMTP
// socket does not appear in time.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "harness/process.h"
#include "harness/temp_dir.h"

namespace chainmail::harness {

struct DovecotLmtpOptions {
  std::filesystem::path mail_plugin_dir;                             // empty: Dovecot's own plugins
  std::string mail_plugins;                                          // protocol lmtp { mail_plugins = ... }
  std::vector<std::pair<std::string, std::string>> plugin_settings;  // plugin { key = value }
  std::map<std::string, std::string> user_fields;    // user -> space-separated userdb extra fields
  std::map<std::string, std::string> sieve_scripts;  // user -> active Sieve script text
  std::filesystem::path sieve_plugin_dir;            // plugin { sieve_plugin_dir }; empty: Pigeonhole's own
};

// The environment that preloads this process's sanitizer runtimes (libasan, libubsan, found in
// /proc/self/maps) into a Dovecot program that loads our sanitized plugins (dovecot, sieve-test, sievec),
// with the ASan/UBSan options the harness uses. Empty in a build without sanitizers. Such a program also
// needs `import_environment = ... LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS` in its configuration (Dovecot clears
// the environment when it re-executes itself or its children).
Env sanitizer_env();

class DovecotLmtp {
 public:
  DovecotLmtp();

  void start() { start(DovecotLmtpOptions{}); }  // Stops a running one first; keeps the Maildirs.
  void start(const DovecotLmtpOptions& options);
  void stop();  // SIGTERM, SIGKILL after 5 s; no-op when not running.
  bool running() { return process_.running(); }

  std::filesystem::path lmtp_socket() const;  // base_dir/lmtp
  std::filesystem::path maildir(std::string_view user) const;
  const std::filesystem::path& log_path() const { return log_path_; }
  const std::filesystem::path& config_path() const { return config_path_; }

  // The files of `user`'s INBOX (Maildir new/ and cur/), oldest first (Maildir names begin with the time).
  std::vector<std::filesystem::path> messages(std::string_view user) const;
  // The same for a folder other than INBOX (Maildir++: Maildir/.<folder>).
  std::vector<std::filesystem::path> messages(std::string_view user, std::string_view folder) const;
  // The folders `user` is subscribed to (Maildir/subscriptions), in file order.
  std::vector<std::string> subscriptions(std::string_view user) const;
  // Polls until `user` has at least `count` messages (true) or `timeout` has passed (false).
  bool wait_for_messages(std::string_view user, std::size_t count, std::chrono::milliseconds timeout) const;

 private:
  TempDir dir_;
  std::filesystem::path config_path_;
  std::filesystem::path log_path_;
  Process process_;
};

}  // namespace chainmail::harness
