// sieve_lmtp_test.cc: vnd.chainmail through real Dovecot LMTP delivery. Dovecot (harness/dovecot_lmtp.h)
// runs Pigeonhole's Sieve plugin with lib90_sieve_chainmail_plugin.so from the build tree and chainmail's
// LMTP hook when it is built; alice's personal script uses both tests. The test speaks LMTP itself on the
// unix socket, with ORCPT as the milter sets it, and reads the Maildirs. The directory is
// conf/ldap/demo.ldif (no slapd).
//
// Cases: DMARC fail in our Authentication-Results -> Junk, whatever the route; mail through alias postmaster
// -> Postmaster; through group devops -> DevOps; direct mail -> INBOX; a forged field of ours below the
// real one and a field with another authserv-id change nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "harness/dovecot_lmtp.h"
#include "harness/files.h"
#include "harness/process.h"
#include "harness/temp_dir.h"
#include "sieve_support.h"

namespace chainmail::integration {
namespace {

// argv: socket, mail from, rcpt, orcpt (may be empty); the message on stdin. Prints the RCPT reply and the
// DATA reply, one per line.
constexpr const char* kLmtpClient = R"PY(
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(20)
sock.connect(sys.argv[1])
f = sock.makefile("rb")
def reply():
    while True:
        line = f.readline().decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            raise SystemExit("connection closed")
        if len(line) < 4 or line[3] != "-":
            return line
def cmd(text):
    sock.sendall(text.encode() + b"\r\n")
    return reply()
reply()
cmd("LHLO test.local")
cmd("MAIL FROM:<%s>" % sys.argv[2])
line = "RCPT TO:<%s>" % sys.argv[3]
if sys.argv[4]:
    line += " ORCPT=rfc822;" + sys.argv[4]
rcpt = cmd(line)
print(rcpt)
if rcpt.startswith("250"):
    r = cmd("DATA")
    if r.startswith("354"):
        body = sys.stdin.buffer.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        body = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in body.split(b"\r\n"))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        sock.sendall(body + b".\r\n")
        r = reply()
    print(r)
cmd("QUIT")
)PY";

constexpr const char* kScript = R"(require ["vnd.chainmail", "fileinto", "mailbox"];
if authres "fail" { fileinto :create "Junk"; stop; }
if route :alias "postmaster" { fileinto :create "Postmaster"; stop; }
if route :group "devops" { fileinto :create "DevOps"; stop; }
)";

constexpr const char* kPass =
    "Authentication-Results: mx.pydis.wtf; spf=pass smtp.mailfrom=sender@example.net;\n"
    "\tdkim=pass header.d=example.net; dmarc=pass header.from=example.net\n";
constexpr const char* kFail =
    "Authentication-Results: mx.pydis.wtf; spf=fail smtp.mailfrom=sender@example.net;\n"
    "\tdkim=none; dmarc=fail (p=reject) header.from=example.net\n";

class SieveLmtp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    config_dir_ = std::make_unique<harness::TempDir>("sieve-lmtp-conf");
    // Sieve runs as the mail user, which must read chainmail.conf (TempDirs are 0700).
    std::filesystem::permissions(config_dir_->path(),
                                 std::filesystem::perms::others_exec | std::filesystem::perms::group_exec,
                                 std::filesystem::perm_options::add);
    const auto config = config_dir_->path() / "chainmail.conf";
    harness::write_file(config, sieve_chainmail_conf());
    dovecot_ = std::make_unique<harness::DovecotLmtp>();
    harness::DovecotLmtpOptions o;
#ifdef CHAINMAIL_LMTP_PLUGIN_DIR
    // The LMTP hook as in production: it routes the same ORCPT (the folders it would pick are overridden
    // by the script's fileinto).
    o.mail_plugin_dir = CHAINMAIL_LMTP_PLUGIN_DIR;
    o.mail_plugins = "chainmail_lmtp";
#endif
    o.sieve_plugin_dir = CHAINMAIL_SIEVE_PLUGIN_DIR;
    o.plugin_settings = {{"chainmail_config", config.string()},
                         {"sieve_plugins", "sieve_chainmail"},
                         {"sieve_extensions", "+vnd.chainmail"}};
    o.sieve_scripts = {{"alice", kScript}};
    dovecot_->start(o);
  }

  static void TearDownTestSuite() {
    dovecot_.reset();
    config_dir_.reset();
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "dovecot log " << dovecot_->log_path() << ":\n" << harness::log_tail(dovecot_->log_path());
    }
  }

  // Delivers one message to alice@localhost with `orcpt` (empty: none); expects 250 at RCPT and DATA.
  static void deliver(const std::string& orcpt, const std::string& text) {
    const harness::RunResult r =
        harness::run({"/usr/bin/python3", "-c", kLmtpClient, dovecot_->lmtp_socket().string(),
                      "sender@example.net", "alice@localhost", orcpt},
                     text, std::chrono::seconds(60));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.out.substr(0, 3), "250") << r.out;
    ASSERT_NE(r.out.find("\n250"), std::string::npos) << r.out;
  }

  // The folder of alice's that holds the message with `subject` ("INBOX" or a folder name); empty: none.
  static std::string folder_of(const std::string& subject) {
    for (const char* folder : {"INBOX", "Junk", "Postmaster", "DevOps"}) {
      for (const auto& file : dovecot_->messages("alice", folder)) {
        if (harness::read_file(file).find("\nSubject: " + subject + "\n") != std::string::npos) return folder;
      }
    }
    return {};
  }

  static std::unique_ptr<harness::TempDir> config_dir_;
  static std::unique_ptr<harness::DovecotLmtp> dovecot_;
};

std::unique_ptr<harness::TempDir> SieveLmtp::config_dir_;
std::unique_ptr<harness::DovecotLmtp> SieveLmtp::dovecot_;

TEST_F(SieveLmtp, UserScriptFilesByAuthresAndRoute) {
  struct Case {
    std::string subject;
    std::string orcpt;
    std::string authres;
    std::string want;
  };
  const Case cases[] = {
      {"dmarc-fail-group", "devops@pydis.wtf", kFail, "Junk"},
      {"group", "devops@pydis.wtf", kPass, "DevOps"},
      {"alias", "postmaster@pydis.com", kPass, "Postmaster"},
      {"direct", "alice@pydis.wtf", kPass, "INBOX"},
      {"no-orcpt", "", kPass, "INBOX"},
      // A forgery of ours below the real field, and another authserv-id above it, both claiming fail.
      {"forged-below", "alice@pydis.wtf",
       std::string("Authentication-Results: mx.elsewhere.example; dmarc=fail\n") + kPass +
           "Authentication-Results: mx.pydis.wtf; dmarc=fail\n",
       "INBOX"},
      {"no-field-of-ours", "devops@pydis.wtf", "Authentication-Results: mx.elsewhere.example; dmarc=fail\n",
       "DevOps"},
  };
  for (const Case& c : cases) deliver(c.orcpt, sieve_message(c.subject, c.authres));
  // LMTP answers DATA once the copy is stored: no waiting needed.
  for (const Case& c : cases) EXPECT_EQ(folder_of(c.subject), c.want) << c.subject;
  const std::string log = harness::read_file(dovecot_->log_path());
  EXPECT_EQ(log.find("AddressSanitizer"), std::string::npos) << log;
  EXPECT_EQ(log.find("runtime error"), std::string::npos) << log;
}

}  // namespace
}  // namespace chainmail::integration
