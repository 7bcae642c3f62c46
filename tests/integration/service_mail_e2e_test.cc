// service_mail_e2e_test.cc: chainmail-service-mail through a real Postfix, end to end. Real slapd
// (conf/ldap/demo.ldif), unbound (the sender's SPF/DMARC), chainmail-milter (routing: [transport] sends
// dmarc@pydis.wtf to dmarc@service-mail.localhost), Postfix from conf/postfix (its "service" pipe runs the
// built chainmail-service-mail as user "mail", the user Dovecot stores mail as), and Dovecot with chainmail's
// auth plugin serving the dmarc user's Maildir over IMAP. Reports are real ones from the shared corpus
// (CHAINMAIL_SHARED_DIR/testdata/dmarc), read from there.
//
// What is shown: aggregate reports (xml, gz, zip, inside an e-mail) reach Reports.New and Dovecot serves
// them unchanged and subscribed; unsafe or broken XML reaches Reports.Invalid, a failure report Failures,
// anything else INBOX; exit 75 keeps the message deferred in Postfix's queue, nothing bounces, and it is
// delivered once the Maildir is fixed and the queue flushed; autoreply answers through this Postfix's own
// sendmail (postdrop as user mail, pickup, the queue: null sender, Auto-Submitted), once per sender per
// period, never to bulk mail.
//
// AutoreplyComesFromTheAddressTheSenderWrote: the milter routes by delrcpt/addrcpt, so pipe(8)'s
// ${original_recipient} is the rewritten fortune@service-mail.localhost; service-mail maps it back through
// [transport] (reply_address()), and the reply comes From the public address.
//
// The stack starts once (SetUpTestSuite); the suite is one ctest entry (service_mail_e2e.cmake). Mail to the
// outside (the replies) stays deferred: relayhost is a loopback port where nothing listens.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "harness/dns_server.h"
#include "harness/dovecot.h"
#include "harness/files.h"
#include "harness/milter_process.h"
#include "harness/mta.h"
#include "harness/net.h"
#include "harness/process.h"
#include "harness/slapd.h"
#include "harness/smtp_client.h"
#include "harness/temp_dir.h"
#include "integration_support.h"
#include "milter_support.h"
#include "service_mail_e2e_support.h"

namespace chainmail::integration {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr std::string_view kAdminDn = "cn=admin,dc=box,dc=pydis,dc=wtf";  // conf/ldap/slapd.conf.in rootdn
constexpr std::string_view kAdminPassword = "admin-demo";
constexpr std::string_view kDmarcDn = "uid=dmarc,cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf";
constexpr std::string_view kMailusers = "cn=mailusers,cn=groups,cn=accounts,dc=box,dc=pydis,dc=wtf";
constexpr std::string_view kDmarcPassword = "dmarc-pw";

constexpr std::string_view kReportAddress = "dmarc@pydis.wtf";           // [transport] -> service "dmarc"
constexpr std::string_view kDeferAddress = "dmarc-eu@pydis.wtf";         // [transport] -> service "dmarc-eu"
constexpr std::string_view kAutoreplyAddress = "fortune@int.pydis.wtf";  // milter_config's [transport]
constexpr std::string_view kReporter = "reports@pass.example";
constexpr std::string_view kReplyBody = "The fortune service got your message.";

fs::path samples() {
  return CHAINMAIL_DMARC_SAMPLES;
}

struct Owner {
  uid_t uid;
  gid_t gid;
};

Owner mail_user() {
  const passwd* pw = ::getpwnam("mail");
  if (pw == nullptr) throw std::runtime_error("no system user \"mail\"");
  return {pw->pw_uid, pw->pw_gid};
}

void chown_to_mail(const fs::path& path) {
  const Owner mail = mail_user();
  if (::chown(path.c_str(), mail.uid, mail.gid) != 0) {
    throw std::system_error(errno, std::generic_category(), "chown " + path.string());
  }
}

constexpr fs::perms kWorldReadable = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                     fs::perms::others_read | fs::perms::others_exec;

struct Stack {
  harness::TempDir dir{"svce2e"};
  std::unique_ptr<PrivatePostfixDefaults> postfix_defaults;
  harness::Slapd slapd;
  harness::DnsServer dns;
  harness::Dovecot dovecot;
  harness::MilterProcess milter;
  harness::Mta mta;
  std::uint16_t socketmap_port = 0;
  fs::path config;
  fs::path defer_home;  // dmarc-eu's Maildir lives below; root-owned until the test fixes it

  fs::path dmarc_maildir() const { return dovecot.mail_root() / "dmarc" / "Maildir"; }

  void start() {
    // The pipe's user (mail) reads chainmail.conf and runs the sendmail wrapper from here.
    fs::permissions(dir.path(), kWorldReadable);
    postfix_defaults = std::make_unique<PrivatePostfixDefaults>(dir.path());
    postfix_defaults->allow(mta.config_dir());

    slapd.start();
    // demo.ldif's dmarc service account has no password and is outside the login gate: give it both, as an
    // operator would for the mailbox people read the reports from.
    const std::string modify =
        "dn: " + std::string(kDmarcDn) +
        "\nchangetype: modify\nadd: userPassword\nuserPassword: " + std::string(kDmarcPassword) +
        "\n-\nadd: memberOf\nmemberOf: " + std::string(kMailusers) + "\n\ndn: " + std::string(kMailusers) +
        "\nchangetype: modify\nadd: member\nmember: " + std::string(kDmarcDn) + "\n";
    const harness::RunResult r = harness::run({"ldapmodify", "-x", "-H", slapd.uri(), "-D",
                                               std::string(kAdminDn), "-w", std::string(kAdminPassword)},
                                              modify);
    if (r.exit_code != 0) throw std::runtime_error("ldapmodify failed: " + r.err);

    dns.add_zone(zones::kHelo);
    dns.add_txt(zones::kHelo, "v=spf1 ip4:127.0.0.1 -all");
    dns.add_record(std::string(zones::kHelo) + ". 300 IN A 127.0.0.1");
    dns.add_zone(zones::kPass);
    dns.add_txt(zones::kPass, "v=spf1 ip4:127.0.0.1 -all");
    dns.add_txt("_dmarc." + std::string(zones::kPass), "v=DMARC1; p=none");
    dns.start();
    // milter_config wants a signing key; Ed25519 is made at once (RSA takes a second).
    const DkimKey signing = make_dkim_key(dir.path(), "ed25519", "pydis.wtf", zones::kEd25519Selector);

    const fs::path home = dovecot.mail_root() / "dmarc";  // [auth] home below; service-mail makes Maildir
    fs::create_directory(home);
    chown_to_mail(home);
    defer_home = dir.path() / "dmarc-eu";
    fs::create_directory(defer_home);  // root's, 0755: user mail cannot make the Maildir in it
    fs::permissions(defer_home, kWorldReadable);
    const fs::path state = dir.path() / "autoreply-state";
    fs::create_directory(state);
    chown_to_mail(state);
    const fs::path sendmail = dir.path() / "sendmail";
    write_sendmail_wrapper(sendmail, mta.config_dir());

    socketmap_port = harness::free_port();
    config = dir.path() / "chainmail.conf";
    std::string text = milter_config(
        slapd.uri(), dns.resolver(), socketmap_port, {signing},
        {{"[transport]", "\"dmarc@pydis.wtf\" = \"dmarc\"\n\"dmarc-eu@pydis.wtf\" = \"dmarc-eu\""}});
    text += "\n[auth]\nuid = \"mail\"\ngid = \"mail\"\nhome = " +
            toml_string((dovecot.mail_root() / "%u").string()) + "\n";
    text += "\n[services]\n\"dmarc\" = \"dmarc-reports\"\n\"dmarc-eu\" = " +
            toml_string("dmarc-reports:" + (defer_home / "Maildir").string()) +
            "\n\"fortune\" = \"autoreply\"\n";
    text += "\n[service_mail]\nlog = \"stderr\"\n";
    text += "\n[dmarc_reports]\nmaildir = " + toml_string(dmarc_maildir().string()) + "\n";
    text += "\n[autoreply]\nbody = " + toml_string(kReplyBody) +
            "\nperiod_s = 3600\nstate_dir = " + toml_string(state.string()) +
            "\nsendmail = " + toml_string(sendmail.string()) + "\n";
    harness::write_file(config, text);
    fs::permissions(config, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                fs::perms::others_read);

    harness::DovecotOptions d;
    d.chainmail_config = config;
    dovecot.start(d);
    milter.start(config, {socketmap_port});

    harness::MtaOptions m;
    m.socketmap = "inet:127.0.0.1:" + std::to_string(socketmap_port);
    m.lmtp_socket = dovecot.lmtp_socket();
    m.milter = milter.postfix_socket();
    m.service_user = "mail";
    m.service_mail = CHAINMAIL_SERVICE_MAIL_BIN;
    m.chainmail_conf = config;
    // A deferred message waits for the flush, not for the harness's one-second retry.
    m.main_cf["minimal_backoff_time"] = "300s";
    m.main_cf["maximal_backoff_time"] = "600s";
    mta.start(m);
  }

  std::string logs() const {
    return "--- postfix\n" + harness::log_tail(mta.maillog_path(), 4000) + "\n--- dovecot\n" +
           harness::log_tail(dovecot.log_path(), 2000) + "\n--- milter\n" +
           harness::log_tail(milter.log_path(), 1500);
  }
};

// The mail log lines of one queue id that contain every one of `words`.
std::vector<std::string> log_lines(const harness::Mta& mta, std::string_view id,
                                   const std::vector<std::string>& words) {
  std::vector<std::string> out;
  const std::string log = mta.maillog();
  const std::string key = " " + std::string(id) + ": ";
  std::size_t pos = 0;
  while (pos < log.size()) {
    std::size_t end = log.find('\n', pos);
    if (end == std::string::npos) end = log.size();
    const std::string line = log.substr(pos, end - pos);
    pos = end + 1;
    if (line.find(key) == std::string::npos) continue;
    if (std::all_of(words.begin(), words.end(),
                    [&line](const std::string& w) { return line.find(w) != std::string::npos; })) {
      out.push_back(line);
    }
  }
  return out;
}

bool wait_for_log_line(const harness::Mta& mta, std::string_view id, const std::vector<std::string>& words,
                       std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (log_lines(mta, id, words).empty()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::string header_of(const MessageSpec& spec) {
  const std::string message = make_message(spec);
  return message.substr(0, message.find("\r\n\r\n") + 2);
}

MessageSpec report_spec(std::string_view to, std::string subject) {
  return MessageSpec{.from = std::string(kReporter), .to = std::string(to), .subject = std::move(subject)};
}

class ServiceMailE2E : public testing::Test {
 public:
  static void SetUpTestSuite() {
    stack_ = std::make_unique<Stack>();
    try {
      stack_->start();
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }
  static void TearDownTestSuite() { stack_.reset(); }

 protected:
  void SetUp() override { ASSERT_TRUE(error_.empty()) << "stack did not start: " << error_; }
  static Stack& stack() { return *stack_; }

  // Sends over port 25 from outside (HELO mail.pass.example); returns the queue id ("" when refused).
  static std::string send(std::string_view from, std::string_view to, const std::string& message) {
    harness::SmtpSend s;
    s.server = stack().mta.smtp_server();
    s.helo = std::string(zones::kHelo);
    s.from = std::string(from);
    s.to = {std::string(to)};
    s.message = message;
    const harness::SmtpSession session = harness::smtp_send(s);
    EXPECT_EQ(session.code("rcpt"), 250) << session.transcript() << "\n" << stack().logs();
    EXPECT_EQ(session.code("data"), 250) << session.transcript() << "\n" << stack().logs();
    return session.queue_id();
  }

  // Waits until the service pipe has delivered queue id `id` (status=sent).
  static bool piped(std::string_view id, std::chrono::milliseconds timeout = seconds(20)) {
    return wait_for_log_line(stack().mta, id, {"relay=service", "status=sent"}, timeout);
  }

  static ImapFetch imap(std::string mailbox, const std::string& message_id, int count = 1,
                        double wait_s = 10) {
    return imap_fetch({stack().dovecot.imap_port(), "dmarc", std::string(kDmarcPassword), std::move(mailbox),
                       message_id.empty() ? std::string() : "Message-ID:" + message_id, count, wait_s});
  }

  // Queued messages with the null sender addressed to `recipient`: autoreplies (and bounces).
  static std::vector<harness::QueuedMessage> replies_to(std::string_view recipient) {
    std::vector<harness::QueuedMessage> out;
    for (auto& m : stack().mta.queue()) {
      // showq shows the null sender as MAILER-DAEMON (empty_address_recipient's default name).
      const bool null_sender = m.sender.empty() || m.sender == "MAILER-DAEMON";
      if (null_sender && std::find(m.recipients.begin(), m.recipients.end(), recipient) != m.recipients.end())
        out.push_back(std::move(m));
    }
    return out;
  }

  static std::vector<harness::QueuedMessage> wait_for_replies(
      std::string_view recipient, std::size_t n, std::chrono::milliseconds timeout = seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto found = replies_to(recipient);
      if (found.size() >= n || std::chrono::steady_clock::now() >= deadline) return found;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // Sends a message to the autoreply service from `sender` and waits until the pipe is done with it.
  static std::string to_autoreply(std::string_view sender, std::string subject,
                                  std::vector<std::pair<std::string, std::string>> extra = {}) {
    const std::string message = make_message({.from = std::string(sender),
                                              .to = std::string(kAutoreplyAddress),
                                              .subject = std::move(subject),
                                              .extra_headers = std::move(extra)});
    std::string id = send(sender, kAutoreplyAddress, message);
    EXPECT_TRUE(piped(id)) << id << "\n" << stack().logs();
    return id;
  }

  // The message as Dovecot serves it must be the message as sent, plus what the MTA prepends: the same body
  // octet for octet, every header field of ours, Return-Path and the pipe's Delivered-To.
  static void expect_served_as_sent(const std::string& served, const std::string& sent) {
    EXPECT_EQ(body_of(served), body_of(sent));
    const std::string served_lf = lf(served);
    const std::string head = served_lf.substr(0, served_lf.find("\n\n") + 1);
    const std::string sent_head = lf(sent).substr(0, lf(sent).find("\n\n") + 1);
    std::size_t pos = 0;
    while (pos < sent_head.size()) {
      const std::size_t end = sent_head.find('\n', pos);
      const std::string line = sent_head.substr(pos, end - pos + 1);
      pos = end + 1;
      EXPECT_NE(head.find(line), std::string::npos) << "header line missing: " << line << "\nserved:\n"
                                                    << head;
    }
    EXPECT_NE(head.find("Return-Path: <" + std::string(kReporter) + ">\n"), std::string::npos) << head;
    EXPECT_NE(head.find("Delivered-To: dmarc@service-mail.localhost\n"), std::string::npos) << head;
  }

  // The milter's log line for queue id `id` ("" when there is none).
  static std::string milter_line(const std::string& id) {
    const std::string log = harness::read_file(stack().milter.log_path());
    const std::size_t at = log.find(" " + id + ": ");
    if (at == std::string::npos) return {};
    std::size_t begin = log.rfind('\n', at);
    begin = begin == std::string::npos ? 0 : begin + 1;
    std::size_t end = log.find('\n', at);
    if (end == std::string::npos) end = log.size();
    return log.substr(begin, end - begin);
  }

  // Sends `message` to the report address and checks the whole path: routed by the milter, piped, served
  // over IMAP from `folder` (subscribed) as sent, and in no other folder.
  static void expect_filed(const std::string& message, const std::string& folder) {
    const std::string id = send(kReporter, kReportAddress, message);
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(piped(id)) << stack().logs();
    // The milter routed it (rule a) and the pipe got the service address.
    EXPECT_NE(milter_line(id).find("rcpt=<dmarc@pydis.wtf>->service:dmarc@service-mail.localhost"),
              std::string::npos)
        << stack().logs();
    EXPECT_EQ(log_lines(stack().mta, id, {"to=<dmarc@service-mail.localhost>", "relay=service"}).size(), 1U)
        << stack().logs();
    const std::string message_id = header_values(message, "Message-ID").at(0);
    const ImapFetch got = imap(folder, message_id);
    ASSERT_TRUE(got.logged_in()) << got.raw << "\n" << stack().logs();
    ASSERT_EQ(got.out.value("select", ""), "OK") << folder << "\n" << got.raw;
    const auto messages = got.messages();
    ASSERT_EQ(messages.size(), 1U) << folder << " " << message_id << "\n" << got.raw;
    expect_served_as_sent(messages[0], message);
    const auto lsub = got.lsub();
    if (folder != "INBOX") {
      EXPECT_NE(std::find(lsub.begin(), lsub.end(), folder), lsub.end()) << folder << " not subscribed:\n"
                                                                         << got.raw;
    }
    // And in no other folder.
    for (const std::string other : {"INBOX", "Reports.New", "Reports.Invalid", "Failures"}) {
      if (other == folder) continue;
      const ImapFetch none = imap(other, message_id, 1, 0);
      EXPECT_TRUE(none.messages().empty()) << message_id << " also in " << other;
    }
  }

 private:
  static inline std::unique_ptr<Stack> stack_;
  static inline std::string error_;
};

struct Attachment {
  std::string file;  // in the corpus's aggregate/ folder
  std::string content_type;
};

TEST_F(ServiceMailE2E, AggregateReportsAreFiledInReportsNewAndServedOverImap) {
  for (const Attachment& a :
       {Attachment{"example.net!example.com!1529366400!1529452799.xml", "text/xml"},
        Attachment{"fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz", "application/gzip"},
        Attachment{"estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip",
                   "application/zip"}}) {
    SCOPED_TRACE(a.file);
    const std::string report = harness::read_file(samples() / "aggregate" / a.file);
    expect_filed(with_attachment(header_of(report_spec(kReportAddress, "Report Domain: example.com")), report,
                                 a.file, a.content_type),
                 "Reports.New");
  }
}

TEST_F(ServiceMailE2E, AggregateReportEmailFromTheCorpusIsFiledInReportsNew) {
  // A reporter's whole e-mail (Google's, a zip attached), under our sender's header.
  const std::string eml = harness::read_file(samples() / "aggregate" / "twilight.eml");
  expect_filed(reheader(eml, header_of(report_spec(kReportAddress, "Report domain: twilight"))),
               "Reports.New");
}

TEST_F(ServiceMailE2E, UnsafeOrBrokenReportsAreFiledInReportsInvalid) {
  // Billion laughs: a DOCTYPE with nested entities. Never expanded; the DOCTYPE alone makes it Invalid.
  std::string laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [\n<!ENTITY l0 \"lol\">\n";
  for (int i = 1; i <= 9; ++i) {
    laughs += "<!ENTITY l" + std::to_string(i) + " \"";
    for (int k = 0; k < 10; ++k) laughs += "&l" + std::to_string(i - 1) + ";";
    laughs += "\">\n";
  }
  laughs += "]>\n<feedback><report_metadata><org_name>&l9;</org_name></report_metadata></feedback>\n";
  expect_filed(with_attachment(header_of(report_spec(kReportAddress, "Report Domain: laughs.example")),
                               laughs, "laughs.example!example.com!1700000000!1700086399.xml", "text/xml"),
               "Reports.Invalid");

  const std::string broken = harness::read_file(samples() / "aggregate" / "invalid_xml.xml");
  expect_filed(with_attachment(header_of(report_spec(kReportAddress, "Report Domain: veeam.com")), broken,
                               "veeam.com!example.com!1530133200!1530219600.xml", "text/xml"),
               "Reports.Invalid");
}

TEST_F(ServiceMailE2E, FailureReportIsFiledInFailures) {
  const std::string eml = harness::read_file(samples() / "failure" / "dmarc_ruf_report_linkedin.eml");
  expect_filed(reheader(eml, header_of(report_spec(kReportAddress, "DMARC Failure report for example.com"))),
               "Failures");
}

TEST_F(ServiceMailE2E, NonReportGoesToInbox) {
  expect_filed(make_message({.from = std::string(kReporter),
                             .to = std::string(kReportAddress),
                             .subject = "a question, not a report",
                             .body = "Do you publish DMARC?\r\n"}),
               "INBOX");
}

TEST_F(ServiceMailE2E, TemporaryFailureStaysQueuedWithoutBounceUntilFixedAndFlushed) {
  const std::string report =
      harness::read_file(samples() / "aggregate" / "example.net!example.com!1529366400!1529452799.xml");
  const std::string message =
      with_attachment(header_of(report_spec(kDeferAddress, "Report Domain: example.com (deferred)")), report,
                      "example.net!example.com!1529366400!1529452799.xml", "text/xml");
  const std::string id = send(kReporter, kDeferAddress, message);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for_log_line(stack().mta, id, {"relay=service", "status=deferred"}, seconds(20)))
      << stack().logs();

  // Deferred, with service-mail's reason, and it stays so (no retry before the 300 s back-off).
  const std::string rcpt = "dmarc-eu@service-mail.localhost";
  std::optional<harness::QueuedMessage> queued;
  for (int i = 0; i < 100; ++i) {
    queued = stack().mta.queued(id);
    if (queued && queued->queue_name == "deferred") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(queued.has_value()) << stack().logs();
  EXPECT_EQ(queued->queue_name, "deferred");
  ASSERT_EQ(queued->recipients, std::vector<std::string>{rcpt});
  EXPECT_NE(queued->delay_reasons.at(0).find("Permission denied"), std::string::npos)
      << queued->delay_reasons[0];
  std::this_thread::sleep_for(seconds(2));
  queued = stack().mta.queued(id);
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(queued->queue_name, "deferred");
  EXPECT_TRUE(log_lines(stack().mta, id, {"status=sent"}).empty()) << stack().logs();

  // Nothing bounced: no bounce line, no notice to the sender.
  EXPECT_TRUE(log_lines(stack().mta, id, {"status=bounced"}).empty()) << stack().logs();
  EXPECT_TRUE(log_lines(stack().mta, id, {"sender non-delivery notification"}).empty()) << stack().logs();
  EXPECT_TRUE(replies_to(kReporter).empty());

  // Fixed (the Maildir's parent now belongs to the pipe's user) and flushed: delivered, once.
  chown_to_mail(stack().defer_home);
  const harness::RunResult flush = stack().mta.postqueue({"-i", id});
  ASSERT_EQ(flush.exit_code, 0) << flush.err;
  ASSERT_TRUE(piped(id)) << stack().logs();
  ASSERT_TRUE(wait_for_log_line(stack().mta, id, {"removed"}, seconds(10))) << stack().logs();
  EXPECT_FALSE(stack().mta.queued(id).has_value());
  EXPECT_EQ(log_lines(stack().mta, id, {"relay=service", "status=sent"}).size(), 1U) << stack().logs();
  EXPECT_TRUE(log_lines(stack().mta, id, {"status=bounced"}).empty()) << stack().logs();
  EXPECT_TRUE(replies_to(kReporter).empty());

  const fs::path new_dir = stack().defer_home / "Maildir" / ".Reports.New" / "new";
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(new_dir)) files.push_back(entry.path());
  ASSERT_EQ(files.size(), 1U) << new_dir;
  EXPECT_EQ(body_of(harness::read_file(files[0])), body_of(message));
}

TEST_F(ServiceMailE2E, AutoreplyIsSubmittedThroughThisPostfixsSendmail) {
  const std::string sender = "alice.sender@pass.example";
  const std::string message = make_message({.from = sender,
                                            .to = std::string(kAutoreplyAddress),
                                            .subject = "hello fortune",
                                            .extra_headers = {}});
  const std::string id = send(sender, kAutoreplyAddress, message);
  ASSERT_TRUE(piped(id)) << stack().logs();
  const auto replies = wait_for_replies(sender, 1);
  ASSERT_EQ(replies.size(), 1U) << stack().logs();
  const std::string reply_id = replies[0].queue_id;

  // sendmail -> postdrop as the pipe's user -> pickup: this instance's queue, null envelope sender.
  const std::string uid = "uid=" + std::to_string(mail_user().uid) + " from=<>";
  EXPECT_EQ(log_lines(stack().mta, reply_id, {"postfix/pickup", uid}).size(), 1U) << stack().logs();

  const std::string envelope = stack().mta.queued_envelope(reply_id);
  EXPECT_NE(envelope.find("\nsender: \n"), std::string::npos) << envelope;  // -f <>
  const std::string reply = stack().mta.queued_message(reply_id);
  ASSERT_FALSE(reply.empty()) << stack().logs();
  EXPECT_EQ(header_values(reply, "Auto-Submitted"), std::vector<std::string>{"auto-replied"}) << reply;
  EXPECT_EQ(header_values(reply, "From").size(), 1U) << reply;  // which address: the next test
  const auto to = header_values(reply, "To");
  ASSERT_EQ(to.size(), 1U) << reply;
  EXPECT_NE(to[0].find(sender), std::string::npos) << reply;
  EXPECT_EQ(header_values(reply, "Subject"), std::vector<std::string>{"Re: hello fortune"}) << reply;
  EXPECT_EQ(header_values(reply, "In-Reply-To"), header_values(message, "Message-ID")) << reply;
  EXPECT_NE(lf(reply).find(std::string(kReplyBody)), std::string::npos) << reply;
}

// The reply must come from the address the sender wrote to (autoreply.from is empty, so service-mail takes
// the original recipient), not from the internal service address nobody outside can reach.
TEST_F(ServiceMailE2E, AutoreplyComesFromTheAddressTheSenderWrote) {
  const std::string sender = "dave.sender@pass.example";
  to_autoreply(sender, "who answers?");
  const auto replies = wait_for_replies(sender, 1);
  ASSERT_EQ(replies.size(), 1U) << stack().logs();
  const std::string reply = stack().mta.queued_message(replies[0].queue_id);
  const auto from = header_values(reply, "From");
  ASSERT_EQ(from.size(), 1U) << reply;
  EXPECT_EQ(from[0], kAutoreplyAddress) << reply;
}

TEST_F(ServiceMailE2E, AutoreplyAnswersASenderOncePerPeriod) {
  const std::string sender = "bob.sender@pass.example";
  to_autoreply(sender, "first");
  ASSERT_EQ(wait_for_replies(sender, 1).size(), 1U) << stack().logs();
  to_autoreply(sender, "second, within the period");
  // A sender answered after the second message went through shows the service is still replying.
  const std::string control = "bob.control@pass.example";
  to_autoreply(control, "control");
  ASSERT_EQ(wait_for_replies(control, 1).size(), 1U) << stack().logs();
  EXPECT_EQ(replies_to(sender).size(), 1U) << stack().logs();
}

TEST_F(ServiceMailE2E, AutoreplyNeverAnswersBulkMail) {
  const std::string sender = "carol.sender@pass.example";
  to_autoreply(sender, "newsletter", {{"Precedence", "bulk"}});
  const std::string control = "carol.control@pass.example";
  to_autoreply(control, "control");
  ASSERT_EQ(wait_for_replies(control, 1).size(), 1U) << stack().logs();
  EXPECT_TRUE(replies_to(sender).empty()) << stack().logs();
}

}  // namespace
}  // namespace chainmail::integration
