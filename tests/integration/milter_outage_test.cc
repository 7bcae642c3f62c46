// milter_outage_test.cc: what a client sees when a piece behind Postfix is down, and that mail flows again
// once it is back. Real Postfix, chainmail-milter, slapd, unbound and Dovecot, as in milter_flow_test.cc; a
// suite of its own because its tests stop daemons. Each test leaves the stack running again (SetUp restarts
// what a failed test left stopped).
//
// Trouble must tempfail (4xx: the client keeps the message and retries), never bounce and never pass mail
// unchecked (docs/milter.md "Replies"; main.cf milter_default_action = tempfail).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "harness/files.h"
#include "milter_support.h"

namespace chainmail::integration {
namespace {

using std::chrono::seconds;

class MilterOutage : public MailStackSuite<MilterOutage> {
 public:
  static void SetUpTestSuite() { start_stack({}); }

 protected:
  void SetUp() override {
    MailStackSuite::SetUp();
    if (HasFatalFailure()) return;
    if (!stack().slapd.running()) stack().slapd.restart();
    if (!stack().milter.running()) stack().milter.restart();
  }

  static harness::SmtpSend to_alice() {
    harness::SmtpSend message =
        stack().inbound("sender@pass.example", {"alice@pydis.wtf"},
                        make_message({.from = "sender@pass.example", .to = "alice@pydis.wtf"}));
    message.dkim = stack().pass_key.signer();
    return message;
  }
};

// 7. The directory is down: 451 4.3.0 at RCPT, nothing accepted, nothing bounced. The client retries (here:
// sends again) once slapd is back, and the message is delivered.
TEST_F(MilterOutage, DirectoryDownIs451AtRcptAndMailFlowsWhenItIsBack) {
  const std::size_t alice = stack().dovecot.messages("alice").size();
  const std::size_t queued = stack().mta.queue().size();
  stack().slapd.stop();

  harness::SmtpSession s = harness::smtp_send(to_alice());
  EXPECT_EQ(s.code("mail"), 250) << s.transcript();
  EXPECT_EQ(s.code("rcpt"), 451) << s.transcript() << stack().logs();
  EXPECT_TRUE(s.text("rcpt").starts_with("4.3.0")) << s.transcript();
  EXPECT_NE(s.code("data"), 250) << s.transcript();
  EXPECT_EQ(stack().mta.queue().size(), queued) << stack().mta.postqueue({"-p"}).out;

  stack().slapd.restart();
  s = harness::smtp_send(to_alice());
  EXPECT_EQ(s.code("rcpt"), 250) << s.transcript() << stack().logs();
  ASSERT_EQ(s.code("data"), 250) << s.transcript();
  EXPECT_TRUE(stack().dovecot.wait_for_messages("alice", alice + 1, seconds(10))) << stack().logs();
  // The first attempt left no trace: exactly one copy.
  EXPECT_EQ(stack().dovecot.messages("alice").size(), alice + 1);
}

// A hung directory (slapd stopped with SIGSTOP: connections open, nothing answers) is trouble as well, within
// the configured search timeout, not after the client's patience has run out.
TEST_F(MilterOutage, HungDirectoryIs451AtRcptWithinTheTimeout) {
  stack().slapd.pause();
  const auto start = std::chrono::steady_clock::now();
  const harness::SmtpSession s = harness::smtp_send(to_alice());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  stack().slapd.resume();
  EXPECT_EQ(s.code("rcpt"), 451) << s.transcript() << stack().logs();
  EXPECT_TRUE(s.text("rcpt").starts_with("4.3.0")) << s.transcript();
  EXPECT_NE(s.code("data"), 250) << s.transcript();
  // directory.connect_timeout_ms = 500 and search_timeout_ms = 1000 in milter_config(), per attempt.
  EXPECT_LT(elapsed, seconds(8)) << s.transcript();
}

// 8. The milter is gone: Postfix tempfails (milter_default_action = tempfail) and accepts nothing, neither by
// SMTP nor from sendmail; with the milter back, the queued local message goes out and SMTP mail is accepted.
// The milter also shows that SIGTERM stops it cleanly (exit 0).
TEST_F(MilterOutage, MilterDownTempfailsAndNothingIsAccepted) {
  const std::size_t alice = stack().dovecot.messages("alice").size();
  const std::size_t bob = stack().dovecot.messages("bob").size();
  EXPECT_EQ(stack().milter.stop(), 0) << stack().milter.log();

  // Postfix answers 451 4.7.1 from the first command the milter would have seen; what follows is only the
  // protocol's 503 for commands after a refused one.
  const harness::SmtpSession s = harness::smtp_send(to_alice());
  const auto refused = std::find_if(s.replies.begin(), s.replies.end(), [](const harness::SmtpReply& reply) {
    return reply.code >= 400 || reply.code < 0;
  });
  ASSERT_NE(refused, s.replies.end()) << s.transcript();
  EXPECT_EQ(refused->code, 451) << "a missing milter must tempfail, never bounce:\n" << s.transcript();
  EXPECT_TRUE(refused->text.starts_with("4.7.1")) << s.transcript();
  EXPECT_NE(s.code("data"), 250) << s.transcript();
  EXPECT_TRUE(s.queue_id().empty()) << s.transcript();

  // Local submission while the milter is down: postdrop takes it, but it must not leave unsigned or unrouted.
  const harness::RunResult r =
      stack().mta.sendmail({"-f", "alice@pydis.wtf", "bob@pydis.wtf"},
                           make_message({.from = "alice@pydis.wtf", .to = "bob@pydis.wtf"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(
      stack().mta.wait_for_log("connect to Milter service " + stack().milter.postfix_socket(), seconds(10)))
      << stack().logs();
  EXPECT_FALSE(stack().dovecot.wait_for_messages("bob", bob + 1, std::chrono::milliseconds(500)));

  stack().milter.restart();
  const harness::SmtpSession again = harness::smtp_send(to_alice());
  EXPECT_EQ(again.code("data"), 250) << again.transcript() << stack().logs();
  EXPECT_TRUE(stack().dovecot.wait_for_messages("alice", alice + 1, seconds(10))) << stack().logs();

  // pickup retries the maildrop file on its own timer (master.cf wakeup 60 s); wake it now, as postdrop does.
  const harness::RunResult kick =
      harness::run({"postkick", "-c", stack().mta.config_dir().string(), "public", "pickup", "W"});
  EXPECT_EQ(kick.exit_code, 0) << kick.err;
  ASSERT_TRUE(stack().dovecot.wait_for_messages("bob", bob + 1, seconds(10))) << stack().logs();
  const std::string copy = harness::read_file(stack().dovecot.messages("bob").back());
  EXPECT_EQ(header_values(copy, "DKIM-Signature").size(), 2U) << copy;  // RSA and Ed25519
}

}  // namespace
}  // namespace chainmail::integration
