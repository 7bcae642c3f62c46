// submission_test.cc: authenticated submission on 587 (STARTTLS) and 465 (implicit TLS) as conf/postfix
// configures it, end to end: real slapd (conf/ldap/demo.ldif plus one service account with a password), real
// Dovecot with chainmail's auth plugin (SASL for Postfix, IMAP over TLS, LMTP delivery), chainmail-milter
// (routing, DKIM signing, and the socketmap maps "route" and "senders") and real Postfix with a self-signed
// certificate (tests/harness/tls.h). Clients are Python's smtplib and imaplib (submission_client.py), which
// verify the certificate.
//
// The whole stack starts once (SetUpTestSuite); the suite is one ctest entry (submission.cmake).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "harness/dns_server.h"
#include "harness/dovecot.h"
#include "harness/files.h"
#include "harness/milter_process.h"
#include "harness/mta.h"
#include "harness/net.h"
#include "harness/paths.h"
#include "harness/process.h"
#include "harness/slapd.h"
#include "harness/temp_dir.h"
#include "harness/tls.h"
#include "integration_support.h"
#include "milter_support.h"

namespace chainmail::integration {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr std::string_view kAdminDn = "cn=admin,dc=box,dc=pydis,dc=wtf";  // conf/ldap/slapd.conf.in rootdn
constexpr std::string_view kAdminPassword = "admin-demo";
constexpr std::string_view kMailusers = "cn=mailusers,cn=groups,cn=accounts,dc=box,dc=pydis,dc=wtf";

// demo.ldif's service accounts (dmarc, alertmanager, fortune) have no password and are outside the login
// gate: the suite adds one that may log in, as FreeIPA would hold it.
constexpr std::string_view kServiceEntry =
    "dn: uid=reports,cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf\n"
    "objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: "
    "inetOrgPerson\nobjectClass: inetUser\n"
    "uid: reports\ncn: Reports Bot\nsn: Bot\nmail: reports@int.pydis.wtf\nuserPassword: reports-pw\n"
    "memberOf: cn=mailusers,cn=groups,cn=accounts,dc=box,dc=pydis,dc=wtf\n";

std::filesystem::path client_script() {
  return harness::source_dir() / "tests" / "integration" / "submission_client.py";
}

struct Stack {
  harness::TempDir dir{"submission"};
  harness::Slapd slapd;
  harness::DnsServer dns;
  harness::TlsCert cert;
  harness::Dovecot dovecot;
  harness::MilterProcess milter;
  harness::Mta mta;
  std::uint16_t socketmap_port = 0;
  std::filesystem::path config;

  void start() {
    slapd.start();
    for (const auto& [tool, input] :
         {std::pair{"ldapadd", std::string(kServiceEntry)},
          std::pair{"ldapmodify", "dn: " + std::string(kMailusers) +
                                      "\nchangetype: modify\nadd: member\nmember: "
                                      "uid=reports,cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf\n"}}) {
      const harness::RunResult r = harness::run(
          {tool, "-x", "-H", slapd.uri(), "-D", std::string(kAdminDn), "-w", std::string(kAdminPassword)},
          input);
      if (r.exit_code != 0) throw std::runtime_error(std::string(tool) + " failed: " + r.err);
    }
    dns.start();  // no zones: submitted mail is signed, never validated, but the milter wants a resolver
    const DkimKey signing = make_dkim_key(dir.path(), "rsa", "pydis.wtf", zones::kSigningSelector);

    socketmap_port = harness::free_port();
    config = dir.path() / "chainmail.conf";
    std::string text = milter_config(slapd.uri(), dns.resolver(), socketmap_port, {signing});
    text += "\n[auth]\nuid = \"mail\"\ngid = \"mail\"\nhome = " +
            toml_string((dovecot.mail_root() / "%u").string()) + "\n";
    harness::write_file(config, text);

    harness::DovecotOptions d;
    d.chainmail_config = config;
    d.ssl_cert = cert.cert_file();
    d.ssl_key = cert.key_file();
    dovecot.start(d);
    milter.start(config, {socketmap_port});

    harness::MtaOptions m;
    m.socketmap = "inet:127.0.0.1:" + std::to_string(socketmap_port);
    m.lmtp_socket = dovecot.lmtp_socket();
    m.milter = milter.postfix_socket();
    m.submission = harness::MtaSubmission{cert.cert_file(), cert.key_file(),
                                          "inet:127.0.0.1:" + std::to_string(dovecot.auth_port())};
    mta.start(m);
  }

  std::string logs() const {
    return "--- postfix\n" + harness::log_tail(mta.maillog_path(), 3000) + "\n--- dovecot\n" +
           harness::log_tail(dovecot.log_path(), 3000) + "\n--- milter\n" +
           harness::log_tail(milter.log_path(), 1500);
  }
};

// One client run: its JSON answer, with the raw output kept for failure messages.
struct ClientRun {
  json out;
  std::string raw;

  // The code of the n-th reply of `step`; 0 when there is none.
  int code(std::string_view step, std::size_t n = 0) const {
    if (!out.contains("steps")) return 0;
    for (const auto& s : out["steps"]) {
      if (s["step"] == step && n-- == 0) return s["code"].get<int>();
    }
    return 0;
  }
  std::string text(std::string_view step) const {
    if (!out.contains("steps")) return {};
    for (const auto& s : out["steps"]) {
      if (s["step"] == step) return s["text"].get<std::string>();
    }
    return {};
  }
};

ClientRun run_client(std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/python3", client_script().string()});
  const harness::RunResult r = harness::run(args, {}, seconds(60));
  ClientRun c;
  c.raw = r.out + r.err;
  try {
    c.out = json::parse(r.out);
  } catch (const json::exception&) {
    c.out = json::object();
  }
  return c;
}

struct Submit {
  std::string server;
  std::string mode = "starttls";  // starttls (587), tls (465), plain
  std::string auth;               // plain, login or empty
  std::string user;
  std::string password;
  std::string from;
  std::vector<std::string> to;
  std::string subject = "submission test";
};

class Submission : public testing::Test {
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
  static std::string port587() { return stack().mta.submission_server(); }
  static std::string port465() { return stack().mta.submissions_server(); }

  static ClientRun submit(const Submit& s) {
    std::vector<std::string> args = {
        "smtp",   "--server", s.server,    "--mode", s.mode, "--ca", stack().cert.cert_file().string(),
        "--from", s.from,     "--subject", s.subject};
    if (!s.auth.empty()) {
      for (const std::string& a : {std::string("--auth"), s.auth, std::string("--user"), s.user,
                                   std::string("--password"), s.password})
        args.push_back(a);
    }
    for (const auto& to : s.to) {
      args.emplace_back("--to");
      args.push_back(to);
    }
    return run_client(args);
  }
  static std::string why(const ClientRun& c) { return c.raw + "\n" + stack().logs(); }

 private:
  static inline std::unique_ptr<Stack> stack_;
  static inline std::string error_;
};

bool has_feature(const json& features, std::string_view prefix) {
  for (const auto& f : features) {
    if (f.get<std::string>().starts_with(prefix)) return true;
  }
  return false;
}

TEST_F(Submission, Port587StartTlsThenPlainAndLoginSucceed) {
  for (const std::string mechanism : {"plain", "login"}) {
    const ClientRun c = submit({port587(),
                                "starttls",
                                mechanism,
                                "alice",
                                "alice-pw",
                                "alice@pydis.wtf",
                                {"bob@pydis.wtf"},
                                "587 " + mechanism});
    EXPECT_EQ(c.code("starttls"), 220) << why(c);
    EXPECT_EQ(c.code("auth"), 235) << mechanism << "\n" << why(c);
    EXPECT_EQ(c.code("mail"), 250) << why(c);
    EXPECT_EQ(c.code("rcpt"), 250) << why(c);
    EXPECT_EQ(c.code("data"), 250) << why(c);
  }
}

TEST_F(Submission, AuthIsOfferedOnlyAfterStartTls) {
  const ClientRun c = submit({port587(), "starttls", "", "", "", "alice@pydis.wtf", {"bob@pydis.wtf"}});
  ASSERT_EQ(c.code("starttls"), 220) << why(c);
  EXPECT_TRUE(has_feature(c.out["features_before_tls"], "STARTTLS")) << c.raw;
  EXPECT_FALSE(has_feature(c.out["features_before_tls"], "AUTH")) << c.raw;
  EXPECT_TRUE(has_feature(c.out["features"], "AUTH")) << c.raw;
  const std::string offered = c.out["auth_offered"].get<std::string>();
  EXPECT_NE(offered.find("PLAIN"), std::string::npos) << offered;
  EXPECT_NE(offered.find("LOGIN"), std::string::npos) << offered;

  // Trying anyway without TLS: smtplib refuses to send AUTH the server did not offer; no MAIL either.
  const ClientRun plain =
      submit({port587(), "plain", "plain", "alice", "alice-pw", "alice@pydis.wtf", {"bob@pydis.wtf"}});
  EXPECT_NE(plain.code("auth"), 235) << plain.raw;
  EXPECT_EQ(plain.code("mail"), 0) << plain.raw;
  const ClientRun raw_mail = submit({port587(), "plain", "", "", "", "alice@pydis.wtf", {"bob@pydis.wtf"}});
  EXPECT_EQ(raw_mail.code("mail"), 530) << raw_mail.raw;  // 5.7.0 Must issue a STARTTLS command first

  // Port 25 never offers AUTH, with or without TLS.
  const ClientRun inbound =
      submit({stack().mta.smtp_server(), "starttls", "", "", "", "someone@example.org", {"bob@pydis.wtf"}});
  EXPECT_EQ(inbound.code("starttls"), 220) << why(inbound);
  EXPECT_FALSE(has_feature(inbound.out["features"], "AUTH")) << inbound.raw;
}

TEST_F(Submission, Port465ImplicitTlsPlainSucceeds) {
  const ClientRun c = submit(
      {port465(), "tls", "plain", "alice", "alice-pw", "alice@pydis.wtf", {"bob@pydis.wtf"}, "465 plain"});
  EXPECT_EQ(c.code("connect"), 220) << why(c);
  EXPECT_FALSE(c.out["tls_version"].get<std::string>().empty()) << c.raw;
  EXPECT_EQ(c.code("auth"), 235) << why(c);
  EXPECT_EQ(c.code("data"), 250) << why(c);
}

TEST_F(Submission, WrongPasswordIsRefused) {
  const ClientRun c =
      submit({port587(), "starttls", "plain", "alice", "not-alice-pw", "alice@pydis.wtf", {"bob@pydis.wtf"}});
  EXPECT_EQ(c.code("auth"), 535) << why(c);
  EXPECT_EQ(c.code("mail"), 0) << c.raw;
}

TEST_F(Submission, RelayWithoutAuthIsRefused) {
  // Submission after STARTTLS, without AUTH: nothing at all, relay or not.
  for (const std::string rcpt : {"someone@example.org", "bob@pydis.wtf"}) {
    const ClientRun c = submit({port587(), "starttls", "", "", "", "alice@pydis.wtf", {rcpt}});
    EXPECT_EQ(c.code("mail"), 250) << why(c);
    EXPECT_EQ(c.code("rcpt"), 554) << rcpt << "\n" << why(c);
  }
  // Port 25, from loopback (in mynetworks): inbound only, no relaying.
  const ClientRun c =
      submit({stack().mta.smtp_server(), "plain", "", "", "", "alice@pydis.wtf", {"someone@example.org"}});
  EXPECT_EQ(c.code("rcpt"), 554) << why(c);
  EXPECT_NE(c.text("rcpt").find("Relay access denied"), std::string::npos) << c.raw;
}

TEST_F(Submission, AuthenticatedUserRelaysToAnOutsideDomain) {
  const ClientRun c = submit({port587(),
                              "starttls",
                              "plain",
                              "alice",
                              "alice-pw",
                              "alice@pydis.wtf",
                              {"someone@example.org"},
                              "outbound"});
  EXPECT_EQ(c.code("rcpt"), 250) << why(c);
  EXPECT_EQ(c.code("data"), 250) << why(c);
}

TEST_F(Submission, SendingAsSomeoneElseIsRefused) {
  for (const std::string from :
       {"bob@pydis.wtf", "bob@pydis.com", "dmarc@int.pydis.wtf", "staff@pydis.wtf", "someone@example.org"}) {
    const ClientRun c =
        submit({port587(), "starttls", "plain", "alice", "alice-pw", from, {"bob@pydis.wtf"}});
    ASSERT_EQ(c.code("auth"), 235) << why(c);
    EXPECT_EQ(c.code("rcpt"), 553) << from << "\n" << why(c);
    EXPECT_NE(c.text("rcpt").find("not owned by user alice"), std::string::npos) << c.raw;
  }
}

TEST_F(Submission, OwnAddressesOnEveryHostedDomainAreAccepted) {
  for (const std::string from : {"alice@pydis.com", "Alice@PythonDiscord.com", "alice+lists@pydis.wtf"}) {
    const ClientRun c =
        submit({port587(), "starttls", "login", "alice", "alice-pw", from, {"bob@pydis.wtf"}, "as " + from});
    EXPECT_EQ(c.code("rcpt"), 250) << from << "\n" << why(c);
    EXPECT_EQ(c.code("data"), 250) << from << "\n" << why(c);
  }
  // Logging in by address (Dovecot's passdb answers the uid): the same owner check.
  const ClientRun c = submit({port465(),
                              "tls",
                              "plain",
                              "ALICE@pydis.com",
                              "alice-pw",
                              "alice@pydis.wtf",
                              {"bob@pydis.wtf"},
                              "login by address"});
  EXPECT_EQ(c.code("auth"), 235) << why(c);
  EXPECT_EQ(c.code("rcpt"), 250) << why(c);
}

TEST_F(Submission, ServiceAccountSendsAsItsInternalAddress) {
  const ClientRun ok = submit({port587(),
                               "starttls",
                               "plain",
                               "reports",
                               "reports-pw",
                               "reports@int.pydis.wtf",
                               {"alice@pydis.wtf"},
                               "from a service"});
  EXPECT_EQ(ok.code("auth"), 235) << why(ok);
  EXPECT_EQ(ok.code("rcpt"), 250) << why(ok);
  EXPECT_EQ(ok.code("data"), 250) << why(ok);
  const ClientRun other = submit(
      {port587(), "starttls", "plain", "reports", "reports-pw", "alice@pydis.wtf", {"alice@pydis.wtf"}});
  EXPECT_EQ(other.code("rcpt"), 553) << why(other);
  const ClientRun main_domain = submit(
      {port587(), "starttls", "plain", "reports", "reports-pw", "reports@pydis.wtf", {"alice@pydis.wtf"}});
  EXPECT_EQ(main_domain.code("rcpt"), 553) << why(main_domain);
}

// The map as Postfix reads it (postmap -q), from chainmail-milter's socketmap (what the stack uses) and from
// `chainmail socketmap` (the same map without the milter).
TEST_F(Submission, SendersMapAnswersPostfix) {
  const std::uint16_t cli_port = harness::free_port();
  harness::Process cli({chainmail_bin().string(), "socketmap", "--config", stack().config.string(),
                        "--listen", "inet:127.0.0.1:" + std::to_string(cli_port)},
                       stack().dir.path() / "socketmap.log");
  ASSERT_TRUE(harness::wait_for_port(cli_port, seconds(10)))
      << harness::log_tail(stack().dir.path() / "socketmap.log");
  for (const std::uint16_t port : {stack().socketmap_port, cli_port}) {
    const std::string map = "socketmap:inet:127.0.0.1:" + std::to_string(port) + ":senders";
    auto query = [&map](const std::string& key) {
      return harness::run({"postmap", "-c", stack().mta.config_dir().string(), "-q", key, map});
    };
    for (const auto& [key, want] :
         std::vector<std::pair<std::string, std::string>>{{"alice@pydis.wtf", "alice"},
                                                          {"Alice@Pydis.Com", "alice"},
                                                          {"bob+x@owlcorp.uk", "bob"},
                                                          {"reports@int.pydis.wtf", "reports"},
                                                          {"dmarc@int.pydis.wtf", "dmarc"}}) {
      const harness::RunResult q = query(key);
      EXPECT_EQ(q.exit_code, 0) << map << " " << key << ": " << q.err;
      EXPECT_EQ(q.out, want + "\n") << map << " " << key;
    }
    for (const std::string key :
         {"nobody@pydis.wtf", "alice@example.org", "devops@pydis.wtf", "alice@localhost"}) {
      const harness::RunResult q = query(key);
      EXPECT_EQ(q.exit_code, 1) << map << " " << key << ": " << q.out << q.err;
    }
    // The route map is still there beside it.
    const harness::RunResult route =
        harness::run({"postmap", "-c", stack().mta.config_dir().string(), "-q", "alice@pydis.com",
                      "socketmap:inet:127.0.0.1:" + std::to_string(port) + ":route"});
    EXPECT_EQ(route.out, "alice@localhost\n") << route.err;
  }
  cli.terminate(seconds(30));
}

// Directory trouble is never "not owned": Postfix gets TEMP, a lookup error (smtpd answers 4xx), not a
// "not found" that would refuse the sender.
TEST_F(Submission, SendersMapTroubleIsTemporary) {
  stack().slapd.pause();
  struct Resume {
    ~Resume() { stack().slapd.resume(); }
  } resume;
  const std::string map = "socketmap:inet:127.0.0.1:" + std::to_string(stack().socketmap_port) + ":senders";
  const harness::RunResult q =
      harness::run({"postmap", "-c", stack().mta.config_dir().string(), "-q", "alice@pydis.wtf", map});
  EXPECT_NE(q.exit_code, 0) << q.out;
  EXPECT_EQ(q.out, "");
  // postmap exits 1 for "not found" and for its fatal query error alike: the reply tells them apart.
  EXPECT_NE(q.err.find("socketmap server temporary error"), std::string::npos) << q.err;
  EXPECT_NE(q.err.find("query error"), std::string::npos) << q.err;
}

TEST_F(Submission, ImapOverTlsReadsTheDeliveredMessage) {
  const std::string subject = "for bob over imap";
  const ClientRun sent =
      submit({port465(), "tls", "plain", "alice", "alice-pw", "alice@pydis.wtf", {"bob@pydis.wtf"}, subject});
  ASSERT_EQ(sent.code("data"), 250) << why(sent);
  const ClientRun got =
      run_client({"imap", "--server", "127.0.0.1:" + std::to_string(stack().dovecot.imaps_port()), "--ca",
                  stack().cert.cert_file().string(), "--user", "bob", "--password", "bob-pw", "--subject",
                  subject, "--wait", "15"});
  ASSERT_EQ(got.out.value("login", ""), "OK") << why(got);
  ASSERT_TRUE(got.out.value("found", false)) << why(got);
  const std::string message = got.out["message"].get<std::string>();
  EXPECT_NE(message.find("Subject: " + subject), std::string::npos) << message;
  EXPECT_NE(message.find("From: <alice@pydis.wtf>"), std::string::npos) << message;
  // Received over TLS after AUTH (ESMTPSA), and signed by chainmail-milter (daemon name ORIGINATING).
  EXPECT_NE(message.find("with ESMTPSA"), std::string::npos) << message;
  const auto signature = message.find("DKIM-Signature:");
  ASSERT_NE(signature, std::string::npos) << message;
  EXPECT_NE(message.find(" d=pydis.wtf;", signature), std::string::npos) << message;

  const ClientRun wrong =
      run_client({"imap", "--server", "127.0.0.1:" + std::to_string(stack().dovecot.imaps_port()), "--ca",
                  stack().cert.cert_file().string(), "--user", "bob", "--password", "alice-pw", "--subject",
                  subject, "--wait", "0"});
  EXPECT_NE(wrong.out.value("login", ""), "OK") << wrong.raw;
}

}  // namespace
}  // namespace chainmail::integration
