// milter_flow_test.cc: chainmail-milter in the real mail flow: Postfix (conf/postfix) hands it every
// message, unbound serves the senders' SPF, DKIM and DMARC records, slapd holds the demo directory and
// Dovecot stores what is delivered. One stack for the suite; messages are sent with smtplib and signed with
// dkimpy (tests/harness/smtp_send.py), so neither side of a check is chainmail's own code.
//
// What each test shows is in its comment; docs/milter.md is the specification (replies, Authentication-
// Results, signing). The milter's authserv-id is the default, domains.main = "pydis.wtf".
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "harness/files.h"
#include "harness/process.h"
#include "milter_support.h"

namespace chainmail::integration {
namespace {

using std::chrono::seconds;

constexpr std::string_view kAuthservId = "pydis.wtf";

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// The ORCPT Postfix stored for `recipient`: postcat -e prints a recipient's named attributes (among them
// dsn_orig_rcpt) before its "recipient:" record.
std::string orcpt_of(std::string_view envelope, std::string_view recipient) {
  std::string orcpt;
  while (!envelope.empty()) {
    const std::size_t end = envelope.find('\n');
    const std::string_view line = envelope.substr(0, end);
    envelope.remove_prefix(end == std::string_view::npos ? envelope.size() : end + 1);
    static constexpr std::string_view kOrcpt = "named_attribute: dsn_orig_rcpt=";
    if (line.starts_with(kOrcpt)) {
      orcpt = std::string(line.substr(kOrcpt.size()));
    } else if (line.starts_with("recipient: ") || line.starts_with("done_recipient: ")) {
      if (line.substr(line.find(' ') + 1) == recipient) return orcpt;
      orcpt.clear();
    }
  }
  return {};
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

class MilterFlow : public MailStackSuite<MilterFlow> {
 public:
  static void SetUpTestSuite() { start_stack({}); }

 protected:
  // Sends and returns the session; `logs` on failure are the daemons' log tails.
  static harness::SmtpSession send(const harness::SmtpSend& message) { return harness::smtp_send(message); }

  // The newest message of `user` once it has `count` (the test counted before sending).
  static std::string wait_for_delivery(std::string_view user, std::size_t count) {
    if (!stack().dovecot.wait_for_messages(user, count, seconds(10))) return {};
    return harness::read_file(stack().dovecot.messages(user).back());
  }

  // The first of `user`'s messages that contains `needle` (unique to the test), waiting up to 10 s: robust
  // against a previous test's delivery to the same user arriving late, which counting messages is not.
  static std::string wait_for_message_with(std::string_view user, const std::string& needle) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& path : stack().dovecot.messages(user)) {
        std::string text = harness::read_file(path);
        if (text.find(needle) != std::string::npos) return text;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return {};
  }

  // Waits for Postfix to log the delivery attempts of `id` to each of `recipients`.
  static bool wait_for_attempts(const std::string& id, const std::vector<std::string>& recipients) {
    return std::all_of(recipients.begin(), recipients.end(), [&](const std::string& rcpt) {
      return stack().mta.wait_for_log(id + ": to=<" + rcpt + ">", seconds(10));
    });
  }
};

// 1. A signed message from an aligned sender to a group: delivered to the members' mailboxes with one
// Authentication-Results of ours saying spf, dkim and dmarc pass; the group is gone from the envelope, the
// mailbox members are LMTP recipients at the mailbox domain, the forwarding members wait for the relay with
// the group as their ORCPT. The signature still verifies in the delivered copy.
TEST_F(MilterFlow, PassIsDeliveredWithAuthenticationResultsAndRoutedRecipients) {
  const std::size_t alice = stack().dovecot.messages("alice").size();
  const std::size_t bob = stack().dovecot.messages("bob").size();
  harness::SmtpSend message =
      stack().inbound("sender@pass.example", {"devops@pydis.wtf"},
                      make_message({.from = "sender@pass.example", .to = "devops@pydis.wtf"}));
  message.dkim = stack().pass_key.signer();
  const harness::SmtpSession s = send(message);
  EXPECT_EQ(s.code("mail"), 250) << s.transcript();
  EXPECT_EQ(s.code("rcpt"), 250) << s.transcript();
  ASSERT_EQ(s.code("data"), 250) << s.transcript() << stack().logs();
  const std::string id = s.queue_id();

  const std::string copy = wait_for_delivery("alice", alice + 1);
  ASSERT_FALSE(copy.empty()) << stack().logs();
  ASSERT_FALSE(wait_for_delivery("bob", bob + 1).empty()) << stack().logs();

  const std::vector<std::string> ours = authentication_results(copy, kAuthservId);
  ASSERT_EQ(ours.size(), 1U) << copy;
  for (const std::string_view token :
       {"spf=pass", "smtp.mailfrom=sender@pass.example", "dkim=pass", "header.d=pass.example", "header.s=sel",
        "header.a=rsa-sha256", "dmarc=pass", "header.from=pass.example"}) {
    EXPECT_TRUE(contains(ours[0], token)) << token << " missing in: " << ours[0];
  }
  EXPECT_EQ(header_values(copy, "Authentication-Results").size(), 1U) << copy;
  const harness::RunResult verified = harness::dkim_verify(copy, stack().dns.address());
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err << copy;

  // The envelope after the milter: mailbox targets delivered over LMTP, forwards deferred at the relay.
  ASSERT_TRUE(wait_for_attempts(id, {"alice@localhost", "bob@localhost", "joe@jb3.dev", "carol@example.net"}))
      << stack().logs();
  const std::string log = stack().mta.maillog();
  EXPECT_TRUE(contains(log, id + ": to=<alice@localhost>")) << log;
  EXPECT_FALSE(contains(log, id + ": to=<devops@pydis.wtf>")) << log;
  const auto queued = wait_for_recipients(stack().mta, id, {"carol@example.net", "joe@jb3.dev"});
  ASSERT_TRUE(queued.has_value()) << stack().mta.postqueue({"-p"}).out;
  EXPECT_EQ(sorted(queued->recipients), (std::vector<std::string>{"carol@example.net", "joe@jb3.dev"}));
  const std::string envelope = stack().mta.queued_envelope(id);
  EXPECT_EQ(orcpt_of(envelope, "joe@jb3.dev"), "rfc822;devops@pydis.wtf") << envelope;
  EXPECT_EQ(orcpt_of(envelope, "carol@example.net"), "rfc822;devops@pydis.wtf") << envelope;
  EXPECT_EQ(orcpt_of(envelope, "alice@localhost"), "rfc822;devops@pydis.wtf") << envelope;

  // One log line per message, with the queue id.
  EXPECT_TRUE(contains(stack().milter.log(), "chainmail-milter: " + id + ": ")) << stack().milter.log();
}

// 1b. A forwarding user's mail waits in the queue for the external relay, ORCPT = the address the sender
// used.
TEST_F(MilterFlow, ForwardWaitsForTheRelayWithTheOriginalAsOrcpt) {
  harness::SmtpSend message =
      stack().inbound("sender@pass.example", {"joe@pydis.wtf"},
                      make_message({.from = "sender@pass.example", .to = "joe@pydis.wtf"}));
  message.dkim = stack().pass_key.signer();
  const harness::SmtpSession s = send(message);
  ASSERT_EQ(s.code("data"), 250) << s.transcript() << stack().logs();
  const std::string id = s.queue_id();
  ASSERT_TRUE(wait_for_attempts(id, {"joe@jb3.dev"})) << stack().logs();

  const auto queued = wait_for_recipients(stack().mta, id, {"joe@jb3.dev"});
  ASSERT_TRUE(queued.has_value()) << stack().mta.postqueue({"-p"}).out;
  EXPECT_EQ(queued->recipients, std::vector<std::string>{"joe@jb3.dev"});
  EXPECT_EQ(queued->sender, "sender@pass.example");
  EXPECT_EQ(orcpt_of(stack().mta.queued_envelope(id), "joe@jb3.dev"), "rfc822;joe@pydis.wtf")
      << stack().mta.queued_envelope(id);
  // The queued copy carries our verdict for whoever receives it next.
  const std::vector<std::string> ours = authentication_results(stack().mta.queued_message(id), kAuthservId);
  ASSERT_EQ(ours.size(), 1U) << stack().mta.queued_message(id);
  EXPECT_TRUE(contains(ours[0], "dmarc=pass")) << ours[0];
}

// 2. From: a p=reject domain, with SPF passing for another domain and no signature: DMARC fails, 550 5.7.1 at
// end of DATA; nothing is queued.
TEST_F(MilterFlow, DmarcRejectIsRefusedAtEndOfData) {
  const auto before = stack().mta.queue().size();
  const harness::SmtpSession s =
      send(stack().inbound("bounces@pass.example", {"alice@pydis.wtf"},
                           make_message({.from = "ceo@reject.example", .to = "alice@pydis.wtf"})));
  EXPECT_EQ(s.code("mail"), 250) << s.transcript();
  EXPECT_EQ(s.code("rcpt"), 250) << s.transcript();
  EXPECT_EQ(s.code("data"), 550) << s.transcript() << stack().logs();
  EXPECT_TRUE(s.text("data").starts_with("5.7.1")) << s.transcript();
  EXPECT_TRUE(s.queue_id().empty());
  EXPECT_LE(stack().mta.queue().size(), before);
}

// 2b. A signature by a domain other than From's does not align: still a DMARC fail.
TEST_F(MilterFlow, UnalignedSignatureDoesNotSatisfyDmarc) {
  harness::SmtpSend message =
      stack().inbound("bounces@pass.example", {"alice@pydis.wtf"},
                      make_message({.from = "ceo@reject.example", .to = "alice@pydis.wtf"}));
  message.dkim = stack().pass_key.signer();  // d=pass.example, valid, but not reject.example
  const harness::SmtpSession s = send(message);
  EXPECT_EQ(s.code("data"), 550) << s.transcript() << stack().logs();
  EXPECT_TRUE(s.text("data").starts_with("5.7.1")) << s.transcript();
}

// 3. From: a p=quarantine domain, not aligned: accepted into the hold queue (postqueue -p shows "ID!"), with
// our verdict in the held copy.
TEST_F(MilterFlow, DmarcQuarantineIsHeld) {
  const harness::SmtpSession s =
      send(stack().inbound("bounces@pass.example", {"alice@pydis.wtf"},
                           make_message({.from = "news@quarantine.example", .to = "alice@pydis.wtf"})));
  ASSERT_EQ(s.code("data"), 250) << s.transcript() << stack().logs();
  const std::string id = s.queue_id();
  ASSERT_FALSE(id.empty()) << s.transcript();

  const auto queued = stack().mta.queued(id);
  ASSERT_TRUE(queued.has_value()) << stack().mta.postqueue({"-p"}).out << stack().logs();
  EXPECT_EQ(queued->queue_name, "hold");
  const harness::RunResult listing = stack().mta.postqueue({"-p"});
  EXPECT_TRUE(contains(listing.out, id + "!")) << listing.out;
  // Held before routing's rewrite is delivered; the rewrite itself is already in the queue file.
  EXPECT_EQ(queued->recipients, std::vector<std::string>{"alice@localhost"});
  const std::vector<std::string> ours = authentication_results(stack().mta.queued_message(id), kAuthservId);
  ASSERT_EQ(ours.size(), 1U) << stack().mta.queued_message(id);
  EXPECT_TRUE(contains(ours[0], "dmarc=fail")) << ours[0];
  stack().mta.postsuper({"-d", id});
}

// p=none: DMARC fails but the domain asks for nothing: delivered, and the verdict says fail.
TEST_F(MilterFlow, DmarcNoneIsDeliveredWithTheFailRecorded) {
  const std::size_t alice = stack().dovecot.messages("alice").size();
  const harness::SmtpSession s =
      send(stack().inbound("bounces@pass.example", {"alice@pydis.wtf"},
                           make_message({.from = "info@none.example", .to = "alice@pydis.wtf"})));
  ASSERT_EQ(s.code("data"), 250) << s.transcript() << stack().logs();
  const std::string copy = wait_for_delivery("alice", alice + 1);
  ASSERT_FALSE(copy.empty()) << stack().logs();
  const std::vector<std::string> ours = authentication_results(copy, kAuthservId);
  ASSERT_EQ(ours.size(), 1U) << copy;
  EXPECT_TRUE(contains(ours[0], "dmarc=fail")) << ours[0];
  EXPECT_TRUE(contains(ours[0], "header.from=none.example")) << ours[0];
  EXPECT_TRUE(contains(ours[0], "dkim=none")) << ours[0];
}

// 4. MAIL FROM a domain whose SPF record ends in -all and does not list 127.0.0.1: 550 5.7.23, nothing
// accepted.
TEST_F(MilterFlow, SpfFailIsRejected) {
  const harness::SmtpSession s =
      send(stack().inbound("sender@spf-fail.example", {"alice@pydis.wtf"},
                           make_message({.from = "sender@spf-fail.example", .to = "alice@pydis.wtf"})));
  EXPECT_EQ(s.code("mail"), 550) << s.transcript() << stack().logs();
  EXPECT_TRUE(s.text("mail").starts_with("5.7.23")) << s.transcript();
  EXPECT_NE(s.code("data"), 250) << s.transcript();
}

// A HELO name whose SPF record fails: 550 5.7.23 (spf.reject_helo_fail), at HELO or at MAIL FROM.
TEST_F(MilterFlow, HeloSpfFailIsRejected) {
  harness::SmtpSend message =
      stack().inbound("sender@pass.example", {"alice@pydis.wtf"},
                      make_message({.from = "sender@pass.example", .to = "alice@pydis.wtf"}));
  message.helo = std::string(zones::kHeloFail);
  const harness::SmtpSession s = send(message);
  const bool rejected = (s.code("ehlo") == 550 && s.text("ehlo").starts_with("5.7.23")) ||
                        (s.code("mail") == 550 && s.text("mail").starts_with("5.7.23"));
  EXPECT_TRUE(rejected) << s.transcript() << stack().logs();
  EXPECT_NE(s.code("data"), 250) << s.transcript();
}

// DNS trouble for the MAIL FROM domain (every query REFUSED): SPF temperror, 451 4.7.x at MAIL FROM (the
// client retries later), never a pass or a reject.
TEST_F(MilterFlow, DnsTroubleTempfails) {
  const harness::SmtpSession s =
      send(stack().inbound("sender@broken.example", {"alice@pydis.wtf"},
                           make_message({.from = "sender@broken.example", .to = "alice@pydis.wtf"})));
  EXPECT_EQ(s.code("mail"), 451) << s.transcript() << stack().logs();
  EXPECT_TRUE(s.text("mail").starts_with("4.7.")) << s.transcript();
  EXPECT_NE(s.code("data"), 250) << s.transcript();
}

// 5. Authentication-Results claiming our authserv-id (a forgery) and one that does not parse are removed;
// another ADMD's stays; ours is the only one with our id.
TEST_F(MilterFlow, ForgedAuthenticationResultsAreRemoved) {
  const std::size_t alice = stack().dovecot.messages("alice").size();
  harness::SmtpSend message = stack().inbound(
      "sender@pass.example", {"alice@pydis.wtf"},
      make_message(
          {.from = "sender@pass.example",
           .to = "alice@pydis.wtf",
           .extra_headers = {
               {"Authentication-Results", "pydis.wtf; dkim=pass header.d=forged.example"},
               {"Authentication-Results", "other.example; spf=pass smtp.mailfrom=sender@pass.example"},
               {"Authentication-Results", "this is not an authentication result"},
               {"Authentication-Results", "pydis.wtf;\r\n\tdmarc=pass header.from=forged.example"},
           }}));
  message.dkim = stack().pass_key.signer();
  const harness::SmtpSession s = send(message);
  ASSERT_EQ(s.code("data"), 250) << s.transcript() << stack().logs();
  const std::string copy = wait_for_delivery("alice", alice + 1);
  ASSERT_FALSE(copy.empty()) << stack().logs();

  const std::vector<std::string> ours = authentication_results(copy, kAuthservId);
  ASSERT_EQ(ours.size(), 1U) << copy;
  EXPECT_FALSE(contains(ours[0], "forged.example")) << ours[0];
  EXPECT_TRUE(contains(ours[0], "dkim=pass")) << ours[0];
  EXPECT_EQ(authentication_results(copy, "other.example").size(), 1U) << copy;
  EXPECT_FALSE(contains(copy, "not an authentication result")) << copy;
  EXPECT_EQ(header_values(copy, "Authentication-Results").size(), 2U) << copy;
}

// 6. Unknown recipients on hosted domains: 550 5.1.1 at RCPT; the known one in the same transaction goes
// through.
TEST_F(MilterFlow, UnknownRecipientIs550AtRcpt) {
  const std::size_t alice = stack().dovecot.messages("alice").size();
  harness::SmtpSend message = stack().inbound(
      "sender@pass.example", {"nobody-here@pydis.wtf", "alice@pydis.wtf", "nobody-here@pydis.com"},
      make_message({.from = "sender@pass.example", .to = "alice@pydis.wtf"}));
  message.dkim = stack().pass_key.signer();
  const harness::SmtpSession s = send(message);
  EXPECT_EQ(s.code("rcpt", 0), 550) << s.transcript() << stack().logs();
  EXPECT_TRUE(s.text("rcpt", 0).starts_with("5.1.1")) << s.transcript();
  EXPECT_EQ(s.code("rcpt", 1), 250) << s.transcript();
  EXPECT_EQ(s.code("rcpt", 2), 550) << s.transcript();
  EXPECT_TRUE(s.text("rcpt", 2).starts_with("5.1.1")) << s.transcript();
  ASSERT_EQ(s.code("data"), 250) << s.transcript();
  EXPECT_FALSE(wait_for_delivery("alice", alice + 1).empty()) << stack().logs();
}

// The internal delivery domains cannot be addressed from outside (Postfix refuses them before the milter; the
// milter would as well).
TEST_F(MilterFlow, InternalDeliveryDomainsAreRefused) {
  const harness::SmtpSession s =
      send(stack().inbound("sender@pass.example", {"alice@localhost", "fortune@service-mail.localhost"},
                           make_message({.from = "sender@pass.example", .to = "alice@localhost"})));
  EXPECT_GE(s.code("rcpt", 0), 550) << s.transcript();
  EXPECT_GE(s.code("rcpt", 1), 550) << s.transcript();
  EXPECT_NE(s.code("data"), 250) << s.transcript();
}

// 9. Submission (daemon name ORIGINATING): not validated (no Authentication-Results of ours), DKIM-signed
// with both of pydis.wtf's keys (RSA and Ed25519, RFC 8463); dkimpy verifies each signature in the delivered
// copy against the published keys.
TEST_F(MilterFlow, SubmissionIsSignedNotValidated) {
  const std::size_t bob = stack().dovecot.messages("bob").size();
  const harness::SmtpSession s =
      send(stack().submission("alice@pydis.wtf", {"bob@pydis.wtf"},
                              make_message({.from = "alice@pydis.wtf", .to = "bob@pydis.wtf"})));
  ASSERT_EQ(s.code("data"), 250) << s.transcript() << stack().logs();
  const std::string copy = wait_for_delivery("bob", bob + 1);
  ASSERT_FALSE(copy.empty()) << stack().logs();

  EXPECT_TRUE(authentication_results(copy, kAuthservId).empty()) << copy;
  const std::vector<std::string> signatures = header_values(copy, "DKIM-Signature");
  ASSERT_EQ(signatures.size(), 2U) << copy;
  std::vector<std::string> verdicts;
  for (std::size_t i = 0; i < signatures.size(); ++i) {
    EXPECT_TRUE(contains(signatures[i], "d=pydis.wtf")) << signatures[i];
    const harness::RunResult verified =
        harness::dkim_verify(copy, stack().dns.address(), static_cast<int>(i));
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err << copy;
    verdicts.push_back(verified.out);
  }
  EXPECT_EQ(sorted(verdicts),
            (std::vector<std::string>{"pass d=pydis.wtf s=ed2026\n", "pass d=pydis.wtf s=mail2026\n"}));
  const std::string all = signatures[0] + signatures[1];
  EXPECT_TRUE(contains(all, "a=rsa-sha256")) << all;
  EXPECT_TRUE(contains(all, "a=ed25519-sha256")) << all;
}

// 9b. The sendmail path (postdrop, pickup, cleanup-originating with non_smtpd_milters): signed as well.
TEST_F(MilterFlow, LocalSendmailIsSigned) {
  const std::size_t bob = stack().dovecot.messages("bob").size();
  const harness::RunResult r =
      stack().mta.sendmail({"-f", "alice@pydis.wtf", "bob@pydis.wtf"},
                           make_message({.from = "alice@pydis.wtf", .to = "bob@pydis.wtf"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string copy = wait_for_delivery("bob", bob + 1);
  ASSERT_FALSE(copy.empty()) << stack().logs();
  EXPECT_TRUE(authentication_results(copy, kAuthservId).empty()) << copy;
  ASSERT_EQ(header_values(copy, "DKIM-Signature").size(), 2U) << copy;
  for (const int index : {0, 1}) {
    const harness::RunResult verified = harness::dkim_verify(copy, stack().dns.address(), index);
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err << copy;
  }
}

// The sendmail path to an unknown hosted recipient: the milter refuses it at RCPT inside cleanup, and the
// sender gets a bounce. The bounce is Postfix's own mail, which no milter sees: it reaches alice's mailbox
// through virtual_alias_maps, the socketmap the milter serves (conf/postfix/README.md). The known recipient
// of the same message is delivered.
TEST_F(MilterFlow, LocalSendmailToAnUnknownRecipientBounces) {
  const std::string subject = "sendmail to an unknown recipient";
  const harness::RunResult r = stack().mta.sendmail(
      {"-f", "alice@pydis.wtf", "nobody-here@pydis.wtf", "bob@pydis.wtf"},
      make_message(
          {.from = "alice@pydis.wtf", .to = "nobody-here@pydis.wtf, bob@pydis.wtf", .subject = subject}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(wait_for_message_with("bob", "Subject: " + subject).empty()) << stack().logs();
  // The bounce quotes the returned message's headers, and with them its subject.
  const std::string bounce = wait_for_message_with("alice", "Subject: " + subject);
  ASSERT_FALSE(bounce.empty()) << stack().logs();
  EXPECT_TRUE(contains(bounce, "nobody-here@pydis.wtf")) << bounce;
  EXPECT_TRUE(contains(bounce, "5.1.1")) << bounce;
}

// Mail from a domain with no signing key is not signed on submission, and still delivered.
TEST_F(MilterFlow, SubmissionWithoutAKeyIsNotSigned) {
  const std::string subject = "submission without a key";
  const harness::SmtpSession s = send(stack().submission(
      "someone@pass.example", {"bob@pydis.wtf"},
      make_message({.from = "someone@pass.example", .to = "bob@pydis.wtf", .subject = subject})));
  ASSERT_EQ(s.code("data"), 250) << s.transcript() << stack().logs();
  const std::string copy = wait_for_message_with("bob", "Subject: " + subject);
  ASSERT_FALSE(copy.empty()) << stack().logs();
  EXPECT_TRUE(header_values(copy, "DKIM-Signature").empty()) << copy;
  EXPECT_TRUE(authentication_results(copy, kAuthservId).empty()) << copy;
}

}  // namespace
}  // namespace chainmail::integration
