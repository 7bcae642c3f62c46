// milter_support.h: the mail stack the milter integration suites share, and helpers to read what it
// delivered.
//
//   MailStack stack;
//   stack.start({.milter = true});   // slapd (demo.ldif), unbound (test zones), Dovecot LMTP,
//                                     // chainmail-milter (hosting the socketmap), Postfix from conf/postfix
//   SmtpSend send = stack.inbound("sender@pass.example", {"alice@pydis.wtf"},
//                                 make_message({.from = "sender@pass.example", .to = "alice@pydis.wtf"}));
//   send.dkim = stack.pass_key.signer();
//   const SmtpSession s = smtp_send(send);
//   stack.dovecot.wait_for_messages("alice", n, 5s);
//
// The DNS world (zones in TestZones below) is what every sender domain of the tests publishes. The
// chainmail.conf is written by milter_config(), not derived from conf/chainmail.conf, so that the tests pin
// exactly the settings they rely on: the demo domains and routing, cache off (every lookup reaches slapd, so
// stopping slapd is seen at once), short directory timeouts, milter.trusted_networks = [] (the tests send
// from 127.0.0.1 and want validation), [dns] resolvers = the test unbound, and a signing key for pydis.wtf.
//
// Without a milter (MailStackOptions::milter = false) the socketmap comes from `chainmail socketmap` and
// Postfix's smtpd gets its address mappings back, so mail is routed the way Postfix routes mail that
// bypasses the milter: that is the harness's own test, which runs before the milter exists.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "harness/dns_server.h"
#include "harness/dovecot_lmtp.h"
#include "harness/milter_process.h"
#include "harness/mta.h"
#include "harness/process.h"
#include "harness/slapd.h"
#include "harness/smtp_client.h"
#include "harness/temp_dir.h"

namespace chainmail::integration {

// A DKIM key pair made with openssl for one test run.
struct DkimKey {
  std::filesystem::path private_pem;
  std::string public_base64;  // SubjectPublicKeyInfo DER, base64: the p= of the DNS record
  std::string algorithm;      // "rsa" or "ed25519"
  std::string domain;
  std::string selector;

  harness::DkimSigner signer() const { return {private_pem, domain, selector}; }
  std::string dns_name() const { return selector + "._domainkey." + domain; }
  std::string dns_text() const { return "v=DKIM1; k=" + algorithm + "; p=" + public_base64; }
};

// algorithm: "rsa" (2048 bits) or "ed25519". Throws std::runtime_error when openssl fails.
DkimKey make_dkim_key(const std::filesystem::path& dir, std::string_view algorithm, std::string_view domain,
                      std::string_view selector);

// The sender domains of the tests and what they publish. Under .example, not .test: libunbound, like unbound,
// has default local zones for special-use names (RFC 6761: test., invalid., onion., ...) and answers them
// NXDOMAIN itself, never asking the forwarder, so the milter would never see a .test record.
namespace zones {
inline constexpr std::string_view kHelo = "mail.pass.example";      // SPF pass for 127.0.0.1
inline constexpr std::string_view kHeloFail = "helo-fail.example";  // SPF -all: a HELO name that fails
inline constexpr std::string_view kPass = "pass.example";      // SPF pass, DKIM key "sel", DMARC p=reject
inline constexpr std::string_view kReject = "reject.example";  // DMARC p=reject, SPF -all
inline constexpr std::string_view kQuarantine = "quarantine.example";  // DMARC p=quarantine, SPF -all
inline constexpr std::string_view kNone = "none.example";              // DMARC p=none, SPF -all
inline constexpr std::string_view kSpfFail = "spf-fail.example";  // SPF -all for 192.0.2.1 only; DMARC p=none
inline constexpr std::string_view kBroken = "broken.example";     // every query REFUSED (DNS trouble)
inline constexpr std::string_view kSelector = "sel";
inline constexpr std::string_view kSigningSelector = "mail2026";  // pydis.wtf's RSA key in [dkim.signing]
inline constexpr std::string_view kEd25519Selector = "ed2026";    // and its Ed25519 key (RFC 8463)
}  // namespace zones

struct MessageSpec {
  std::string from;  // From: header
  std::string to;    // To: header
  std::string subject = "chainmail integration test";
  std::string body = "Hello from the chainmail integration tests.\r\n";
  std::vector<std::pair<std::string, std::string>> extra_headers = {};  // placed after From..Message-ID
};

// A complete RFC 5322 message (CRLF) with From, To, Subject, Date and a unique Message-ID.
std::string make_message(const MessageSpec& spec);

// The header fields of a message (LF or CRLF), unfolded, in order: {name, value without leading space}.
std::vector<std::pair<std::string, std::string>> header_fields(std::string_view message);
// The values of every field named `name` (case-insensitive), in order.
std::vector<std::string> header_values(std::string_view message, std::string_view name);
// Authentication-Results values whose authserv-id is `authserv_id`.
std::vector<std::string> authentication_results(std::string_view message, std::string_view authserv_id);

// Polls `postqueue -j` until message `id` is queued with exactly `recipients` left (in any order), or
// `timeout` has passed. Returns what was last seen (nothing when the message was not queued). Delivery agents
// log a delivery a moment before they mark the recipient done in the queue file, so a test that saw the log
// line must still wait here.
std::optional<harness::QueuedMessage> wait_for_recipients(
    const harness::Mta& mta, const std::string& id, std::vector<std::string> recipients,
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct MailStackOptions {
  bool milter = true;  // false: no milter, `chainmail socketmap` routes (the harness self-test)
  bool mta = true;     // false: no Dovecot and no Postfix (miltertest talks to the milter itself)
  std::map<std::string, std::string> extra_config = {};  // "[section]" -> lines appended to that section
};

class MailStack {
 public:
  MailStack();
  ~MailStack();
  MailStack(const MailStack&) = delete;
  MailStack& operator=(const MailStack&) = delete;

  void start(const MailStackOptions& options = {});
  void stop();  // Postfix, milter (or socketmap), Dovecot, unbound, slapd; each by its pid.

  // A message from outside: to the inbound smtpd, HELO mail.pass.example.
  harness::SmtpSend inbound(std::string from, std::vector<std::string> to, std::string message) const;
  // A message to the submission listener (daemon name ORIGINATING: signed, not validated).
  harness::SmtpSend submission(std::string from, std::vector<std::string> to, std::string message) const;

  // Everything the daemons logged, for failure messages (tails).
  std::string logs() const;

  harness::TempDir dir{"stack"};
  harness::Slapd slapd;
  harness::DnsServer dns;
  harness::DovecotLmtp dovecot;
  harness::MilterProcess milter;
  harness::Mta mta;
  harness::Process socketmap;  // only without the milter
  std::uint16_t socketmap_port = 0;
  std::filesystem::path config;  // chainmail.conf
  DkimKey pass_key;              // pass.example, selector "sel" (RSA)
  DkimKey signing_key;           // pydis.wtf, selector "mail2026" (RSA): the milter signs with it ...
  DkimKey signing_key_ed25519;   // ... and with this one, selector "ed2026": two signatures per message
  bool with_milter = false;
};

// chainmail.conf for the stack (see the file comment). signing_keys: one domain's keys, in order.
// extra: "[section]" -> lines appended to it.
std::string milter_config(const std::string& ldap_uri, const std::string& dns_resolver,
                          std::uint16_t socketmap_port, const std::vector<DkimKey>& signing_keys,
                          const std::map<std::string, std::string>& extra = {});

// Fixture base for a suite that shares one MailStack: `Suite` is the derived fixture (so each suite has its
// own stack), started once in SetUpTestSuite with the given options; a stack that did not start fails every
// test of the suite with the reason.
//   class MilterFlow : public MailStackSuite<MilterFlow> {
//    public:
//     static void SetUpTestSuite() { start_stack({}); }
//   };
template <typename Suite>
class MailStackSuite : public testing::Test {
 public:
  static void TearDownTestSuite() { stack_.reset(); }

 protected:
  static void start_stack(const MailStackOptions& options) {
    stack_ = std::make_unique<MailStack>();
    try {
      stack_->start(options);
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  void SetUp() override { ASSERT_TRUE(start_error_.empty()) << "stack did not start: " << start_error_; }
  static MailStack& stack() { return *stack_; }

 private:
  static inline std::unique_ptr<MailStack> stack_;
  static inline std::string start_error_;
};

}  // namespace chainmail::integration
