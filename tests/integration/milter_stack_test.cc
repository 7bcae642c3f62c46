// milter_stack_test.cc: the mail stack of the milter suites without the milter: the harness's own test.
//
// Real slapd (demo.ldif), real unbound serving the test zones, real Dovecot LMTP and a real Postfix built
// from conf/postfix, with `chainmail socketmap` as Postfix's virtual_alias_maps (the path mail takes when it
// bypasses the milter). Shows that each piece answers and that a plain message is delivered to Dovecot,
// before any milter is involved; a milter suite that fails while this one passes points at the milter.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "harness/files.h"
#include "harness/process.h"
#include "milter_support.h"

namespace chainmail::integration {
namespace {

using std::chrono::seconds;

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

class MilterStack : public MailStackSuite<MilterStack> {
 public:
  static void SetUpTestSuite() { start_stack({.milter = false}); }

 protected:
  static harness::RunResult drill(const std::string& type, const std::string& name) {
    return harness::run({"drill", "-p", std::to_string(stack().dns.port()), "@127.0.0.1", type, name});
  }
};

TEST_F(MilterStack, DnsServesTheTestZones) {
  harness::RunResult r = drill("TXT", "pass.example");
  EXPECT_NE(r.out.find("\"v=spf1 ip4:127.0.0.1 -all\""), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("NOERROR"), std::string::npos) << r.out;

  // The DKIM key is longer than one character-string: it must come back split, and join to the record.
  r = drill("TXT", stack().pass_key.dns_name());
  EXPECT_NE(r.out.find("\" \""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(stack().pass_key.public_base64.substr(0, 40)), std::string::npos) << r.out;

  r = drill("TXT", "_dmarc.quarantine.example");
  EXPECT_NE(r.out.find("v=DMARC1; p=quarantine"), std::string::npos) << r.out;

  r = drill("TXT", "nothing-here.pass.example");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  r = drill("A", "jb3.dev");  // outside every zone: NXDOMAIN at once, never a query to the Internet
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  r = drill("TXT", "x.broken.example");
  EXPECT_NE(r.out.find("REFUSED"), std::string::npos) << r.out;
}

// dkimpy against our own DNS: a signature made with the key verifies, a changed body does not.
TEST_F(MilterStack, DkimSignAndVerifyThroughTheTestDns) {
  const std::string message = make_message({.from = "sender@pass.example", .to = "alice@pydis.wtf"});
  const std::string signed_message = harness::dkim_sign(message, stack().pass_key.signer());
  ASSERT_EQ(header_values(signed_message, "DKIM-Signature").size(), 1U) << signed_message;

  harness::RunResult r = harness::dkim_verify(signed_message, stack().dns.address());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "pass d=pass.example s=sel\n");

  std::string tampered = signed_message;
  tampered.replace(tampered.find("Hello"), 5, "Howdy");
  r = harness::dkim_verify(tampered, stack().dns.address());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("fail", 0), 0U) << r.out;
}

// Without the milter, Postfix routes a group address through the socketmap: alice and bob (admins, nested in
// devops) get it from Dovecot, joe and carol are forwarded and wait for the relay, with the group as their
// original recipient.
TEST_F(MilterStack, PlainMessageIsDeliveredThroughThePostfixTemplates) {
  const std::size_t alice_before = stack().dovecot.messages("alice").size();
  const std::size_t bob_before = stack().dovecot.messages("bob").size();
  harness::SmtpSend send =
      stack().inbound("sender@pass.example", {"devops@pydis.wtf"},
                      make_message({.from = "sender@pass.example", .to = "devops@pydis.wtf"}));
  const harness::SmtpSession s = harness::smtp_send(send);
  ASSERT_EQ(s.code("data"), 250) << s.transcript() << stack().logs();
  const std::string id = s.queue_id();
  ASSERT_FALSE(id.empty()) << s.transcript();

  ASSERT_TRUE(stack().dovecot.wait_for_messages("alice", alice_before + 1, seconds(10))) << stack().logs();
  ASSERT_TRUE(stack().dovecot.wait_for_messages("bob", bob_before + 1, seconds(10))) << stack().logs();
  const std::string delivered = harness::read_file(stack().dovecot.messages("alice").back());
  // Dovecot writes Delivered-To only when the LMTP transaction has one recipient; here it had two.
  EXPECT_NE(delivered.find("by mx.chainmail.test (Postfix)"), std::string::npos) << delivered;
  EXPECT_EQ(header_values(delivered, "Subject"), std::vector<std::string>{"chainmail integration test"});

  ASSERT_TRUE(stack().mta.wait_for_log(id + ": to=<joe@jb3.dev>, orig_to=<devops@pydis.wtf>", seconds(10)))
      << stack().logs();
  const auto queued = wait_for_recipients(stack().mta, id, {"carol@example.net", "joe@jb3.dev"});
  ASSERT_TRUE(queued.has_value()) << stack().mta.postqueue({"-p"}).out;
  EXPECT_EQ(sorted(queued->recipients), (std::vector<std::string>{"carol@example.net", "joe@jb3.dev"}));
  EXPECT_NE(stack().mta.queued_envelope(id).find("dsn_orig_rcpt=rfc822;devops@pydis.wtf"), std::string::npos);
}

// conf/postfix blocks the internal delivery domains at RCPT: nobody outside addresses a mailbox or a service
// directly, even with no milter running.
TEST_F(MilterStack, InternalDeliveryDomainsAreRefusedAtRcpt) {
  harness::SmtpSend send = stack().inbound(
      "sender@pass.example", {"alice@localhost", "fortune@service-mail.localhost", "alice@pydis.wtf"},
      make_message({.from = "sender@pass.example", .to = "alice@pydis.wtf"}));
  const harness::SmtpSession s = harness::smtp_send(send);
  EXPECT_EQ(s.code("rcpt", 0), 554) << s.transcript();
  EXPECT_EQ(s.code("rcpt", 1), 554) << s.transcript();
  EXPECT_EQ(s.code("rcpt", 2), 250) << s.transcript();
  EXPECT_EQ(s.code("data"), 250) << s.transcript();
}

// Postfix tools against the running instance: the queue as JSON, hold and release.
TEST_F(MilterStack, HoldAndReleaseWithPostsuper) {
  harness::SmtpSend send =
      stack().inbound("sender@pass.example", {"carol@pydis.wtf"},
                      make_message({.from = "sender@pass.example", .to = "carol@pydis.wtf"}));
  const harness::SmtpSession s = harness::smtp_send(send);
  const std::string id = s.queue_id();
  ASSERT_FALSE(id.empty()) << s.transcript();
  ASSERT_TRUE(stack().mta.wait_for_log(id + ": to=<carol@example.net>", seconds(10))) << stack().logs();

  harness::RunResult r = stack().mta.postsuper({"-h", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto queued = stack().mta.queued(id);
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(queued->queue_name, "hold");
  EXPECT_NE(stack().mta.postqueue({"-p"}).out.find(id + "!"), std::string::npos);
  EXPECT_NE(stack().mta.queued_message(id).find("Subject: chainmail integration test"), std::string::npos);

  r = stack().mta.postsuper({"-d", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(stack().mta.queued(id).has_value());
}

}  // namespace
}  // namespace chainmail::integration
