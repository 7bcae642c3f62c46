// session_test.cc - the milter's decisions, driven without libmilter: an LDIF directory, zones in memory,
// and a fake MTA that records what it is asked to do.
#include "milter/session.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "adapters/config_loader.h"
#include "adapters/dns/rdata.h"
#include "adapters/dns/static_resolver.h"
#include "adapters/mime/from_header.h"
#include "core/authres.h"

namespace chainmail::milter {
namespace {

namespace fs = std::filesystem;
using Status = Reply::Status;

struct FakeActions final : Actions {
  std::vector<std::string> calls;
  std::vector<std::pair<std::string, std::string>> inserted;  // name, value
  bool insert_header(int index, const std::string& name, const std::string& value) override {
    calls.push_back("insheader " + std::to_string(index) + " " + name);
    inserted.emplace_back(name, value);
    return true;
  }
  bool delete_header(const std::string& name, int index) override {
    calls.push_back("chgheader " + name + " " + std::to_string(index));
    return true;
  }
  bool add_recipient(const std::string& address, const std::string& args) override {
    calls.push_back("addrcpt " + address + " " + args);
    return true;
  }
  bool delete_recipient(const std::string& address) override {
    calls.push_back("delrcpt " + address);
    return true;
  }
  bool quarantine(const std::string& reason) override {
    calls.push_back("quarantine " + reason);
    return true;
  }
  bool called(std::string_view prefix) const {
    for (const auto& c : calls) {
      if (c.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }
};

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    init_mime();
    dir_ = fs::temp_directory_path() / ("chainmail-session-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    // RSA: libopendkim 2.11.0~beta2 leaks each Ed25519 private key it loads (adapters/dkim/dkim.h), which the
    // sanitizer build would report here; Ed25519 signing is covered by dkim_test and the integration suites.
    key_ = (dir_ / "pydis.pem").string();
    const std::string cmd =
        "openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out " + key_ + " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);

    auto loaded = load_config_file(fs::path(CHAINMAIL_SOURCE_DIR) / "conf/chainmail-ldif.conf");
    ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
    config_ = loaded.config;
    config_.milter.trusted_networks = {"10.0.0.0/8"};
    config_.milter.authserv_id = "mx.pydis.wtf";
    config_.dkim.signing["pydis.wtf"] = {"mail:" + key_};

    using dns::RrType;
    auto txt = [&](std::string_view name, std::string_view text) {
      zone_.add(name, RrType::txt, dns::encode_txt(text));
    };
    txt("example.org", "v=spf1 ip4:192.0.2.0/24 -all");
    txt("_dmarc.example.org", "v=DMARC1; p=reject");
    txt("quarantined.example", "v=spf1 ip4:192.0.2.0/24 -all");
    txt("_dmarc.quarantined.example", "v=DMARC1; p=quarantine");
    txt("relaxed.example", "v=spf1 ip4:192.0.2.0/24 ~all");
    txt("_dmarc.relaxed.example", "v=DMARC1; p=none");
    zone_.set_trouble("flaky.example", RrType::txt);
    rebuild();
  }
  void TearDown() override { fs::remove_all(dir_); }

  void rebuild() {
    engines_ = std::make_unique<Engines>(config_, zone_);
    runtime_ = std::make_shared<const Runtime>(config_, *engines_);
    session_ = std::make_unique<Session>([this] { return runtime_; }, log_);
  }

  // Connects from `ip` and sends MAIL FROM.
  Reply start(std::string_view ip, std::string_view sender, const MailMacros& macros = {"Q1", "", "", "25"}) {
    session_->connect("client.example", ip);
    session_->helo("client.example");
    return session_->mail_from("<" + std::string(sender) + ">", {}, macros);
  }
  Reply headers(const std::vector<std::pair<std::string, std::string>>& fields) {
    for (const auto& [n, v] : fields) {
      auto r = session_->header(n, v);
      if (r.status != Status::proceed) return r;
    }
    return session_->end_of_headers();
  }
  Reply finish(std::string_view body = "Hello.\r\n") {
    session_->body(body);
    return session_->end_of_message(actions_, "Q1");
  }
  std::string our_authres() const {
    for (const auto& [n, v] : actions_.inserted) {
      if (n == "Authentication-Results") return v;
    }
    return "";
  }

  fs::path dir_;
  std::string key_;
  Config config_;
  dns::StaticResolver zone_;
  Log log_{Log::Sink::stderr_};
  std::unique_ptr<Engines> engines_;
  std::shared_ptr<const Runtime> runtime_;
  std::unique_ptr<Session> session_;
  FakeActions actions_;
};

TEST_F(SessionTest, RoutesEveryRecipientAndKeepsTheOriginalAsOrcpt) {
  ASSERT_EQ(start("192.0.2.7", "news@relaxed.example").status, Status::proceed);
  EXPECT_EQ(session_->rcpt("<devops@pydis.wtf>", {"NOTIFY=FAILURE"}).status, Status::proceed);
  EXPECT_EQ(session_->rcpt("<someone@elsewhere.example>", {}).status, Status::proceed);
  ASSERT_EQ(headers({{"From", " News <news@relaxed.example>"}}).status, Status::proceed);
  ASSERT_EQ(finish().status, Status::proceed);
  const auto& c = actions_.calls;
  EXPECT_NE(std::find(c.begin(), c.end(), "delrcpt <devops@pydis.wtf>"), c.end());
  EXPECT_NE(
      std::find(c.begin(), c.end(), "addrcpt <alice@localhost> NOTIFY=FAILURE ORCPT=rfc822;devops@pydis.wtf"),
      c.end());
  EXPECT_NE(
      std::find(c.begin(), c.end(), "addrcpt <joe@jb3.dev> NOTIFY=FAILURE ORCPT=rfc822;devops@pydis.wtf"),
      c.end());
  EXPECT_FALSE(actions_.called("delrcpt <someone@elsewhere.example>"));  // not ours: relay rules decide
}

TEST_F(SessionTest, UnknownRecipientIsRefusedAtRcpt) {
  start("192.0.2.7", "news@relaxed.example");
  const auto r = session_->rcpt("<nobody@pydis.wtf>", {});
  EXPECT_EQ(r.status, Status::reject);
  EXPECT_EQ(r.code + " " + r.xcode, "550 5.1.1");
}

TEST_F(SessionTest, InternalDestinationsCannotBeReachedFromOutside) {
  start("192.0.2.7", "news@relaxed.example");
  EXPECT_EQ(session_->rcpt("<alice@localhost>", {}).status, Status::reject);
  EXPECT_EQ(session_->rcpt("<dmarc@service-mail.localhost>", {}).status, Status::reject);
}

TEST_F(SessionTest, DirectoryTroubleTempfailsTheRecipient) {
  config_.directory.uris = {"ldap://127.0.0.1:1/"};
  config_.directory.ldif_file.clear();
  config_.directory.connect_timeout_ms = 200;
  rebuild();
  start("192.0.2.7", "news@relaxed.example");
  const auto r = session_->rcpt("<alice@pydis.wtf>", {});
  EXPECT_EQ(r.status, Status::tempfail);
  EXPECT_EQ(r.code + " " + r.xcode, "451 4.3.0");
}

TEST_F(SessionTest, SpfFailIsRefusedAtMailFrom) {
  const auto r = start("198.51.100.1", "someone@example.org");
  EXPECT_EQ(r.status, Status::reject);
  EXPECT_EQ(r.code + " " + r.xcode, "550 5.7.23");
  config_.spf.reject_mail_from_fail = false;
  rebuild();
  EXPECT_EQ(start("198.51.100.1", "someone@example.org").status, Status::proceed);
}

TEST_F(SessionTest, SpfDnsTroubleTempfails) {
  const auto r = start("192.0.2.7", "someone@flaky.example");
  EXPECT_EQ(r.status, Status::tempfail);
  EXPECT_EQ(r.xcode, "4.7.24");
}

TEST_F(SessionTest, DmarcRejectIsRefusedAtEndOfData) {
  // SPF passes for the envelope domain, but the From domain is example.org (p=reject) with no aligned pass.
  ASSERT_EQ(start("192.0.2.7", "bounce@relaxed.example").status, Status::proceed);
  session_->rcpt("<alice@pydis.wtf>", {});
  ASSERT_EQ(headers({{"From", " <ceo@example.org>"}}).status, Status::proceed);
  const auto r = finish();
  EXPECT_EQ(r.status, Status::reject);
  EXPECT_EQ(r.code + " " + r.xcode, "550 5.7.1");
  EXPECT_FALSE(actions_.called("addrcpt"));
}

TEST_F(SessionTest, DmarcPassIsStampedAndDelivered) {
  ASSERT_EQ(start("192.0.2.7", "ceo@example.org").status, Status::proceed);
  session_->rcpt("<alice@pydis.wtf>", {});
  ASSERT_EQ(headers({{"From", " <ceo@example.org>"}}).status, Status::proceed);
  ASSERT_EQ(finish().status, Status::proceed);
  const auto parsed = authres::parse(our_authres());
  ASSERT_TRUE(parsed) << our_authres();
  EXPECT_EQ(parsed->authserv_id, "mx.pydis.wtf");
  std::map<std::string, std::string> results;
  for (const auto& m : parsed->results) results[m.method] = m.result;
  EXPECT_EQ(results["spf"], "pass");
  EXPECT_EQ(results["dkim"], "none");
  EXPECT_EQ(results["dmarc"], "pass");
  EXPECT_TRUE(actions_.called("insheader 0 Authentication-Results"));
}

TEST_F(SessionTest, DmarcQuarantineHoldsTheMessage) {
  ASSERT_EQ(start("192.0.2.7", "x@relaxed.example").status, Status::proceed);
  session_->rcpt("<alice@pydis.wtf>", {});
  ASSERT_EQ(headers({{"From", " <boss@quarantined.example>"}}).status, Status::proceed);
  EXPECT_EQ(finish().status, Status::proceed);
  EXPECT_TRUE(actions_.called("quarantine"));
}

TEST_F(SessionTest, ForgedAuthenticationResultsAreRemovedLastFirst) {
  ASSERT_EQ(start("192.0.2.7", "ceo@example.org").status, Status::proceed);
  session_->rcpt("<alice@pydis.wtf>", {});
  ASSERT_EQ(headers({{"Authentication-Results", " MX.PYDIS.WTF; dmarc=pass header.from=example.org"},
                     {"Authentication-Results", " other.example; spf=pass smtp.mailfrom=a@b.example"},
                     {"Authentication-Results", " this is ; not parseable ((("},
                     {"From", " <ceo@example.org>"}})
                .status,
            Status::proceed);
  ASSERT_EQ(finish().status, Status::proceed);
  std::vector<std::string> deletions;
  for (const auto& c : actions_.calls) {
    if (c.rfind("chgheader", 0) == 0) deletions.push_back(c);
  }
  EXPECT_EQ(deletions, (std::vector<std::string>{"chgheader Authentication-Results 3",
                                                 "chgheader Authentication-Results 1"}));
}

TEST_F(SessionTest, OneFromAuthorIsRequired) {
  start("192.0.2.7", "ceo@example.org");
  session_->rcpt("<alice@pydis.wtf>", {});
  EXPECT_EQ(headers({{"From", " a@example.org, b@example.org"}}).status, Status::reject);
  start("192.0.2.7", "ceo@example.org");
  EXPECT_EQ(headers({{"From", " a@example.org"}, {"From", " a@example.org"}}).status, Status::reject);
  start("192.0.2.7", "ceo@example.org");
  EXPECT_EQ(headers({{"Subject", " no author"}}).status, Status::reject);
}

TEST_F(SessionTest, TrustedAndAuthenticatedMailIsSignedNotValidated) {
  // An authenticated client far outside the trusted networks, sending as pydis.wtf.
  ASSERT_EQ(start("198.51.100.1", "alice@pydis.wtf", {"Q2", "alice", "", "587"}).status, Status::proceed);
  EXPECT_FALSE(session_->inbound());
  session_->rcpt("<bob@pydis.wtf>", {});
  ASSERT_EQ(headers({{"From", " Alice <alice@pydis.wtf>"}, {"Subject", " hi"}}).status, Status::proceed);
  ASSERT_EQ(finish().status, Status::proceed);
  EXPECT_TRUE(actions_.called("insheader 0 DKIM-Signature"));
  EXPECT_FALSE(actions_.called("insheader 0 Authentication-Results"));
  EXPECT_TRUE(actions_.called("addrcpt <bob@localhost>"));

  // A trusted network and a signing daemon are outbound too.
  start("10.1.2.3", "x@example.org");
  EXPECT_FALSE(session_->inbound());
  start("192.0.2.9", "x@example.org", {"Q3", "", "ORIGINATING", "587"});
  EXPECT_FALSE(session_->inbound());
}

// sendmail(1) mail: cleanup(8) emulates SMTP from localhost and cannot take a reply to RCPT.
TEST_F(SessionTest, LocalSubmissionsAreNeverRefusedAtRcpt) {
  session_->connect("localhost", "127.0.0.1");
  session_->helo("localhost");
  ASSERT_EQ(session_->mail_from("<alice@pydis.wtf>", {}, {"Q4", "", "ORIGINATING", "0"}).status,
            Status::proceed);
  EXPECT_TRUE(session_->non_smtp());
  EXPECT_EQ(session_->rcpt("<nobody@pydis.wtf>", {}).status, Status::proceed);
  EXPECT_EQ(session_->rcpt("<bob@pydis.wtf>", {}).status, Status::proceed);
  ASSERT_EQ(headers({{"From", " <alice@pydis.wtf>"}}).status, Status::proceed);
  ASSERT_EQ(finish().status, Status::proceed);
  EXPECT_FALSE(actions_.called("delrcpt <nobody@pydis.wtf>"));  // Postfix bounces it to alice
  EXPECT_TRUE(actions_.called("addrcpt <bob@localhost>"));

  // Directory trouble waits for the end of the message, where a tempfail is allowed.
  config_.directory.uris = {"ldap://127.0.0.1:1/"};
  config_.directory.ldif_file.clear();
  config_.directory.connect_timeout_ms = 200;
  rebuild();
  session_->connect("localhost", "127.0.0.1");
  ASSERT_EQ(session_->mail_from("<alice@pydis.wtf>", {}, {"Q5", "", "ORIGINATING", ""}).status,
            Status::proceed);
  EXPECT_EQ(session_->rcpt("<bob@pydis.wtf>", {}).status, Status::proceed);
  ASSERT_EQ(headers({{"From", " <alice@pydis.wtf>"}}).status, Status::proceed);
  EXPECT_EQ(finish().status, Status::tempfail);
}

TEST_F(SessionTest, TooManyHeaderFieldsAreRefusedAtTheEndOfTheHeaders) {
  config_.milter.max_headers = 10;
  rebuild();
  start("192.0.2.7", "ceo@example.org");
  std::vector<std::pair<std::string, std::string>> fields(11, {"X-Filler", " x"});
  fields.emplace_back("From", " <ceo@example.org>");
  const auto r = headers(fields);
  EXPECT_EQ(r.status, Status::reject);
  EXPECT_EQ(r.code + " " + r.xcode, "552 5.3.4");
}

TEST(Log, ClientTextCannotForgeOrFloodLogLines) {
  EXPECT_EQ(untrusted("evil\r\nchainmail-milter: fake"), "evil\\x0d\\x0achainmail-milter: fake");
  EXPECT_EQ(untrusted(std::string(500, 'a'), 100), std::string(100, 'a') + "...");
  EXPECT_EQ(untrusted("caf\xc3\xa9"), "caf\\xc3\\xa9");
}

TEST(Xtext, EncodesWhatOrcptCannotCarry) {
  EXPECT_EQ(xtext("a+b=c@example.org"), "a+2Bb+3Dc@example.org");
  EXPECT_EQ(xtext("sp ace"), "sp+20ace");
}

}  // namespace
}  // namespace chainmail::milter
