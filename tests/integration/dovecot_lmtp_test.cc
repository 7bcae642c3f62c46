// dovecot_lmtp_test.cc: the LMTP hook (dovecot-plugin/lmtp) in a real Dovecot, routing against a real slapd
// (conf/ldap/demo.ldif). The test speaks LMTP itself (a small Python client on the LMTP unix socket, ORCPT
// xtext-encoded as the milter sends it) and reads the Maildirs.
//
// Cases: a direct mail lands in INBOX; group mail lands in the group's folder, created and subscribed; alias
// mail lands in the alias's folder; a hostile alias name (a Maildir++ separator) falls back to INBOX; an
// ORCPT that does not route to the mailbox decides nothing; a user with chainmail_no_folders=yes keeps INBOX;
// a forged trace header is removed and each copy of a two-recipient transaction carries its own; slapd
// stopped
// -> 451 at RCPT (last: it stops slapd).
#include "harness/dovecot_lmtp.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "harness/dovecot.h"
#include "harness/files.h"
#include "harness/mta.h"
#include "harness/net.h"
#include "harness/process.h"
#include "harness/slapd.h"
#include "harness/smtp_client.h"
#include "integration_support.h"

namespace chainmail::integration {
namespace {

using harness::DovecotLmtp;

// argv: socket, mail from, then "rcpt|orcpt|params" triples (orcpt and params may be empty); the message on
// stdin. Prints {"lhlo": reply, "rcpt": [reply...], "data": [reply...]} with each reply's full text.
constexpr const char* kLmtpClient = R"PY(
import json, socket, sys
def xtext(s):
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else "+%02X" % ord(c) for c in s)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(20)
sock.connect(sys.argv[1])
f = sock.makefile("rb")
def reply():
    lines = []
    while True:
        line = f.readline().decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            raise SystemExit("connection closed")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return "\n".join(lines)
def cmd(text):
    sock.sendall(text.encode() + b"\r\n")
    return reply()
reply()
out = {"lhlo": cmd("LHLO test.local"), "rcpt": [], "data": []}
cmd("MAIL FROM:<%s>" % sys.argv[2])
accepted = 0
for pair in sys.argv[3:]:
    rcpt, orcpt, extra = pair.split("|", 2)
    line = "RCPT TO:<%s>" % rcpt
    if orcpt:
        line += " ORCPT=rfc822;" + xtext(orcpt)
    if extra:
        line += " " + extra
    r = cmd(line)
    out["rcpt"].append(r)
    accepted += r.startswith("250")
if accepted:
    r = cmd("DATA")
    if r.startswith("354"):
        body = sys.stdin.buffer.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        body = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in body.split(b"\r\n"))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        sock.sendall(body + b".\r\n")
        out["data"] = [reply() for _ in range(accepted)]
    else:
        out["data"] = [r]
cmd("QUIT")
print(json.dumps(out))
)PY";

struct Recipient {
  Recipient(std::string r, std::string o, std::string p = {})
      : rcpt(std::move(r)), orcpt(std::move(o)), params(std::move(p)) {}
  std::string rcpt;
  std::string orcpt;   // empty: no ORCPT
  std::string params;  // more RCPT parameters, e.g. NOTIFY=...
};

struct LmtpResult {
  std::string lhlo;
  std::vector<std::string> rcpt;
  std::vector<std::string> data;
};

std::string message(const std::string& subject, const std::string& extra_headers = {}) {
  return extra_headers + "From: sender@example.org\nTo: list@pydis.wtf\nSubject: " + subject +
         "\nMessage-ID: <" + subject + "@example.org>\n\nHello " + subject + "\n";
}

// The values of every `name:` header in a stored message (unfolded lines only: ours are never folded).
std::vector<std::string> header_values(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t eol = text.find('\n', pos);
    std::string line = text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;  // end of the header
    if (line.size() > name.size() && line[name.size()] == ':' &&
        std::equal(name.begin(), name.end(), line.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      std::string value = line.substr(name.size() + 1);
      value.erase(0, value.find_first_not_of(' '));
      out.push_back(value);
    }
    if (eol == std::string::npos) break;
    pos = eol + 1;
  }
  return out;
}

LmtpResult lmtp_send(const std::filesystem::path& socket, const std::vector<Recipient>& recipients,
                     const std::string& text) {
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", kLmtpClient, socket.string(),
                                   "sender@example.org"};
  for (const auto& r : recipients) argv.push_back(r.rcpt + "|" + r.orcpt + "|" + r.params);
  const harness::RunResult run = harness::run(argv, text, std::chrono::seconds(60));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  LmtpResult out;
  const nlohmann::json json = nlohmann::json::parse(run.out, nullptr, false);
  if (json.is_discarded()) {
    ADD_FAILURE() << "client output is not JSON: " << run.out << run.err;
    return out;
  }
  out.lhlo = json["lhlo"].get<std::string>();
  out.rcpt = json["rcpt"].get<std::vector<std::string>>();
  out.data = json["data"].get<std::vector<std::string>>();
  return out;
}

class DovecotLmtpSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    slapd_ = std::make_unique<harness::Slapd>();
    slapd_->start();
    // The cache is off so that a stopped slapd is seen at once. "ops.lists" is an alias whose name holds
    // Maildir++'s hierarchy separator: its mail must stay in INBOX.
    std::string text =
        demo_config({slapd_->uri()}, {{"max_entries", "0"},
                                      {"connect_timeout_ms", "1000"},
                                      {"search_timeout_ms", "1000"},
                                      {"staff", "\"alice\"\n\"ops.lists\" = \"alice\"\nsales = \"bob\""}});
    text += "\n[lmtp]\nfolder_template = \"%n\"\ntrace_header = \"X-Chainmail-Route\"\n";
    config_ = std::make_unique<ConfigFile>(text);
    dovecot_ = std::make_unique<DovecotLmtp>();
    harness::DovecotLmtpOptions options;
    options.mail_plugin_dir = CHAINMAIL_LMTP_PLUGIN_DIR;
    options.mail_plugins = "chainmail_lmtp";
    options.plugin_settings = {{"chainmail_config", config_->path().string()}};
    options.user_fields = {{"bob", "chainmail_no_folders=yes"}};
    dovecot_->start(options);

    // Real Postfix in front, as in production: chainmail's socketmap expands groups and aliases in
    // virtual_alias_maps, and Postfix's LMTP client passes the original recipient on as ORCPT.
    socketmap_port_ = harness::free_port();
    const std::uint16_t socketmap_port = socketmap_port_;
    socketmap_ = std::make_unique<harness::Process>(
        std::vector<std::string>{chainmail_bin().string(), "socketmap", "--config", config_->path().string(),
                                 "--listen", "inet:127.0.0.1:" + std::to_string(socketmap_port)},
        config_->dir() / "socketmap.log");
    ASSERT_TRUE(harness::wait_for_port(socketmap_port, std::chrono::seconds(10)))
        << harness::log_tail(config_->dir() / "socketmap.log");
    mta_ = std::make_unique<harness::Mta>();
    harness::MtaOptions mta;
    mta.socketmap = "inet:127.0.0.1:" + std::to_string(socketmap_port);
    mta.lmtp_socket = dovecot_->lmtp_socket();
    // No milter here: cleanup's virtual alias expansion stands in for the milter's recipient rewrite (both
    // leave the original recipient for Postfix's LMTP client to send as ORCPT).
    mta.master_cf = {"@SMTPD@/inet/receive_override_options=no_unknown_recipient_checks"};
    mta_->start(mta);
  }

  static void TearDownTestSuite() {
    mta_.reset();
    socketmap_.reset();
    dovecot_.reset();
    config_.reset();
    slapd_.reset();
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "dovecot log " << dovecot_->log_path() << ":\n" << harness::log_tail(dovecot_->log_path());
    }
  }

  static LmtpResult send(const std::vector<Recipient>& recipients, const std::string& text) {
    return lmtp_send(dovecot_->lmtp_socket(), recipients, text);
  }

  // Sends one message to one recipient and expects 250 at RCPT and DATA.
  static void deliver(const Recipient& r, const std::string& text) {
    const LmtpResult res = send({r}, text);
    ASSERT_EQ(res.rcpt.size(), 1U);
    ASSERT_EQ(res.rcpt[0].substr(0, 3), "250") << res.rcpt[0];
    ASSERT_EQ(res.data.size(), 1U);
    ASSERT_EQ(res.data[0].substr(0, 3), "250") << res.data[0];
  }

  // The text of the one message in `user`'s `folder` whose Subject is `subject`; empty when none.
  static std::string find(const std::string& user, const std::string& folder, const std::string& subject) {
    for (const auto& file : dovecot_->messages(user, folder)) {
      std::string text = harness::read_file(file);
      const auto subjects = header_values(text, "Subject");
      if (std::find(subjects.begin(), subjects.end(), subject) != subjects.end()) return text;
    }
    return {};
  }

  static bool subscribed(const std::string& user, const std::string& folder) {
    const auto subs = dovecot_->subscriptions(user);
    return std::find(subs.begin(), subs.end(), folder) != subs.end();
  }

  static std::unique_ptr<harness::Slapd> slapd_;
  static std::unique_ptr<ConfigFile> config_;
  static std::unique_ptr<DovecotLmtp> dovecot_;
  static std::unique_ptr<harness::Process> socketmap_;
  static std::unique_ptr<harness::Mta> mta_;
  static std::uint16_t socketmap_port_;
};

std::unique_ptr<harness::Slapd> DovecotLmtpSuite::slapd_;
std::unique_ptr<ConfigFile> DovecotLmtpSuite::config_;
std::unique_ptr<DovecotLmtp> DovecotLmtpSuite::dovecot_;
std::unique_ptr<harness::Process> DovecotLmtpSuite::socketmap_;
std::unique_ptr<harness::Mta> DovecotLmtpSuite::mta_;
std::uint16_t DovecotLmtpSuite::socketmap_port_ = 0;

TEST_F(DovecotLmtpSuite, DirectMailLandsInInbox) {
  deliver({"alice@localhost", "alice@pydis.wtf"}, message("direct"));
  const std::string text = find("alice", "INBOX", "direct");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(header_values(text, "X-Chainmail-Route"),
            std::vector<std::string>{"alice@pydis.wtf -> user -> alice"});
}

TEST_F(DovecotLmtpSuite, NoOrcptLandsInInboxWithTrace) {
  deliver({"alice@localhost", ""}, message("no-orcpt"));
  const std::string text = find("alice", "INBOX", "no-orcpt");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(header_values(text, "X-Chainmail-Route"),
            std::vector<std::string>{"alice@localhost -> user -> alice"});
}

TEST_F(DovecotLmtpSuite, GroupMailLandsInGroupFolderSubscribed) {
  EXPECT_FALSE(subscribed("alice", "devops"));
  deliver({"alice@localhost", "devops@pydis.wtf"}, message("group"));
  EXPECT_TRUE(find("alice", "INBOX", "group").empty());
  const std::string text = find("alice", "devops", "group");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(header_values(text, "X-Chainmail-Route"),
            std::vector<std::string>{"devops@pydis.wtf -> group devops -> alice"});
  EXPECT_TRUE(subscribed("alice", "devops"));
  // A second group mail goes to the same, existing folder.
  deliver({"alice@localhost", "devops@pydis.wtf"}, message("group-again"));
  EXPECT_FALSE(find("alice", "devops", "group-again").empty());
}

TEST_F(DovecotLmtpSuite, NestedGroupMemberIsFiledUnderTheOuterGroup) {
  // everyone -> group devops -> alice: filed under the group the sender wrote to.
  deliver({"alice@localhost", "everyone@pydis.wtf"}, message("nested"));
  const std::string text = find("alice", "everyone", "nested");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(header_values(text, "X-Chainmail-Route"),
            std::vector<std::string>{"everyone@pydis.wtf -> group everyone -> alice"});
}

TEST_F(DovecotLmtpSuite, AliasMailLandsInAliasFolder) {
  // postmaster (config alias) -> group devops -> alice, written to on an alias domain.
  deliver({"alice@localhost", "postmaster@pydis.com"}, message("alias"));
  const std::string text = find("alice", "postmaster", "alias");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(header_values(text, "X-Chainmail-Route"),
            std::vector<std::string>{"postmaster@pydis.com -> alias postmaster -> alice"});
  EXPECT_TRUE(subscribed("alice", "postmaster"));
}

TEST_F(DovecotLmtpSuite, HostileAliasNameFallsBackToInbox) {
  deliver({"alice@localhost", "ops.lists@pydis.wtf"}, message("hostile"));
  const std::string text = find("alice", "INBOX", "hostile");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(header_values(text, "X-Chainmail-Route"),
            std::vector<std::string>{"ops.lists@pydis.wtf -> alias ops.lists -> alice"});
  EXPECT_FALSE(std::filesystem::exists(dovecot_->maildir("alice") / ".ops.lists"));
  EXPECT_FALSE(std::filesystem::exists(dovecot_->maildir("alice") / ".ops"));
  EXPECT_FALSE(subscribed("alice", "ops.lists"));
}

TEST_F(DovecotLmtpSuite, OrcptThatDoesNotReachTheMailboxDecidesNothing) {
  // The group staff holds only staffer: a forged or stale ORCPT must not file alice's mail anywhere.
  deliver({"alice@localhost", "staff@pydis.wtf"}, message("unrelated-orcpt"));
  const std::string text = find("alice", "INBOX", "unrelated-orcpt");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(header_values(text, "X-Chainmail-Route"),
            std::vector<std::string>{"alice@localhost -> user -> alice"});
  EXPECT_FALSE(std::filesystem::exists(dovecot_->maildir("alice") / ".staff"));
}

TEST_F(DovecotLmtpSuite, OptedOutUserKeepsInbox) {
  // bob has chainmail_no_folders=yes (userdb); the alias sales -> bob.
  deliver({"bob@localhost", "sales@pydis.wtf"}, message("opt-out"));
  const std::string text = find("bob", "INBOX", "opt-out");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(header_values(text, "X-Chainmail-Route"),
            std::vector<std::string>{"sales@pydis.wtf -> alias sales -> bob"});
  EXPECT_FALSE(std::filesystem::exists(dovecot_->maildir("bob") / ".sales"));
}

TEST_F(DovecotLmtpSuite, ForgedTraceHeaderIsRemovedAndEachCopyHasItsOwn) {
  const std::string forged =
      "X-Chainmail-Route: evil@example.org -> group root -> alice\n"
      "x-chainmail-route: second forged copy\n";
  const LmtpResult res =
      send({{"alice@localhost", "devops@pydis.wtf"}, {"staffer@localhost", "staffer@pydis.wtf"}},
           message("forged", forged));
  ASSERT_EQ(res.rcpt.size(), 2U);
  for (const auto& r : res.rcpt) EXPECT_EQ(r.substr(0, 3), "250") << r;
  ASSERT_EQ(res.data.size(), 2U);
  for (const auto& r : res.data) EXPECT_EQ(r.substr(0, 3), "250") << r;

  const std::string alice = find("alice", "devops", "forged");
  ASSERT_FALSE(alice.empty());
  EXPECT_EQ(header_values(alice, "X-Chainmail-Route"),
            std::vector<std::string>{"devops@pydis.wtf -> group devops -> alice"});
  const std::string staffer = find("staffer", "INBOX", "forged");
  ASSERT_FALSE(staffer.empty());
  EXPECT_EQ(header_values(staffer, "X-Chainmail-Route"),
            std::vector<std::string>{"staffer@pydis.wtf -> user -> staffer"});
  // The rest of the message is intact.
  EXPECT_NE(staffer.find("Hello forged"), std::string::npos);
  EXPECT_EQ(header_values(staffer, "From"), std::vector<std::string>{"sender@example.org"});
}

// Postfix's LMTP client sends ORCPT only to a server announcing DSN: the plugin makes Dovecot announce it,
// and then NOTIFY (which Postfix sends along) is accepted too.
TEST_F(DovecotLmtpSuite, DsnIsAnnouncedSoPostfixSendsOrcpt) {
  const LmtpResult res =
      send({{"alice@localhost", "devops@pydis.wtf", "NOTIFY=SUCCESS,FAILURE"}}, message("dsn"));
  EXPECT_NE(res.lhlo.find("DSN"), std::string::npos) << res.lhlo;
  ASSERT_EQ(res.rcpt.size(), 1U);
  EXPECT_EQ(res.rcpt[0].substr(0, 3), "250") << res.rcpt[0];
  EXPECT_FALSE(find("alice", "devops", "dsn").empty());
}

// Through real Postfix: the group is expanded by virtual_alias_maps (chainmail socketmap, the route the
// milter would take), Postfix sends
// ORCPT to Dovecot because the plugin announces DSN, and the copy lands in the group's folder.
TEST_F(DovecotLmtpSuite, ThroughPostfixGroupMailLandsInGroupFolder) {
  harness::SmtpSend send;
  send.server = mta_->smtp_server();
  send.from = "sender@example.org";
  send.to = {"devops@pydis.wtf"};
  send.message = message("via-postfix");
  const harness::SmtpSession session = harness::smtp_send(send);
  ASSERT_EQ(session.code("rcpt"), 250) << session.transcript();
  ASSERT_EQ(session.code("data"), 250) << session.transcript();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string text;
  while (text.empty() && std::chrono::steady_clock::now() < deadline) {
    text = find("alice", "devops", "via-postfix");
    if (text.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(text.empty())
      << "postfix log:\n"
      << harness::log_tail(mta_->maillog_path()) << "\npostmap -q: "
      << harness::run({"postmap", "-c", mta_->config_dir().string(), "-q", "devops@pydis.wtf",
                       "socketmap:inet:127.0.0.1:" + std::to_string(socketmap_port_) + ":route"})
             .out;
  EXPECT_EQ(header_values(text, "X-Chainmail-Route"),
            std::vector<std::string>{"devops@pydis.wtf -> group devops -> alice"});
}

// Last: it stops slapd.
TEST_F(DovecotLmtpSuite, DirectoryDownIs451AtRcpt) {
  slapd_->stop();
  const LmtpResult res = send({{"alice@localhost", "devops@pydis.wtf"}}, message("down"));
  ASSERT_EQ(res.rcpt.size(), 1U);
  EXPECT_EQ(res.rcpt[0].substr(0, 4), "451 ") << res.rcpt[0];
  EXPECT_NE(res.rcpt[0].find("4.3.0"), std::string::npos) << res.rcpt[0];
  EXPECT_TRUE(res.data.empty());
  EXPECT_TRUE(find("alice", "INBOX", "down").empty());
  EXPECT_TRUE(find("alice", "devops", "down").empty());
}

// The hook in the production Dovecot configuration: conf/dovecot (auth and userdb through chainmail's auth
// plugin, tests/harness/dovecot.h) plus conf.d/20-lmtp.conf, so the opt-out comes from the directory
// (lmtp.opt_out_attribute, here "description" set TRUE on bob in a test-local copy of demo.ldif) through the
// chainmail userdb field chainmail_no_folders.
class DovecotLmtpProduction : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
#ifdef CHAINMAIL_NO_AUTH_PLUGIN
    return;
#endif
    dir_ = std::make_unique<harness::TempDir>("lmtp-prod");
    std::string ldif = harness::read_file(harness::demo_ldif());
    const std::string bob = "dn: uid=bob,cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf\n";
    const auto at = ldif.find(bob);
    ASSERT_NE(at, std::string::npos);
    ldif.insert(at + bob.size(), "description: TRUE\n");
    harness::write_file(dir_->path() / "data.ldif", ldif);
    slapd_ = std::make_unique<harness::Slapd>();
    slapd_->start(dir_->path() / "data.ldif");

    dovecot_ = std::make_unique<harness::Dovecot>();
    std::string text = demo_config({slapd_->uri()}, {{"max_entries", "0"}});
    text += "\n[auth]\nuid = \"mail\"\ngid = \"mail\"\nhome = " +
            toml_string(dovecot_->mail_root().string() + "/%u") + "\n";
    text += "\n[lmtp]\nopt_out_attribute = \"description\"\n";
    config_ = std::make_unique<ConfigFile>(text);
    harness::DovecotOptions options;
    options.chainmail_config = config_->path();
    options.imap = false;
    options.conf_files = {"20-lmtp.conf"};
    options.extra_conf = std::string("mail_plugin_dir = ") + CHAINMAIL_LMTP_PLUGIN_DIR + "\n";
    dovecot_->start(options);
  }

  static void TearDownTestSuite() {
    dovecot_.reset();
    config_.reset();
    slapd_.reset();
    dir_.reset();
  }

  void TearDown() override {
    if (HasFailure() && dovecot_) {
      std::cerr << "dovecot log " << dovecot_->log_path() << ":\n" << harness::log_tail(dovecot_->log_path());
    }
  }

  static std::vector<std::filesystem::path> files(const std::string& user, const std::string& folder) {
    std::vector<std::filesystem::path> out;
    const std::filesystem::path maildir = dovecot_->mail_root() / user / "Maildir";
    for (const char* sub : {"new", "cur"}) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(
               (folder == "INBOX" ? maildir : maildir / ("." + folder)) / sub, ec)) {
        out.push_back(e.path());
      }
    }
    return out;
  }

  static std::unique_ptr<harness::TempDir> dir_;
  static std::unique_ptr<harness::Slapd> slapd_;
  static std::unique_ptr<ConfigFile> config_;
  static std::unique_ptr<harness::Dovecot> dovecot_;
};

std::unique_ptr<harness::TempDir> DovecotLmtpProduction::dir_;
std::unique_ptr<harness::Slapd> DovecotLmtpProduction::slapd_;
std::unique_ptr<ConfigFile> DovecotLmtpProduction::config_;
std::unique_ptr<harness::Dovecot> DovecotLmtpProduction::dovecot_;

TEST_F(DovecotLmtpProduction, GroupFolderAndDirectoryOptOut) {
#ifdef CHAINMAIL_NO_AUTH_PLUGIN
  GTEST_SKIP() << "the chainmail auth plugin is not built";
#endif
  const LmtpResult res =
      lmtp_send(dovecot_->lmtp_socket(),
                {{"alice@localhost", "devops@pydis.wtf"}, {"bob@localhost", "devops@pydis.wtf"}},
                message("production"));
  ASSERT_EQ(res.rcpt.size(), 2U);
  for (const auto& r : res.rcpt) EXPECT_EQ(r.substr(0, 3), "250") << r;
  ASSERT_EQ(res.data.size(), 2U);
  for (const auto& r : res.data) EXPECT_EQ(r.substr(0, 3), "250") << r;
  const auto alice = files("alice", "devops");
  ASSERT_EQ(alice.size(), 1U);
  EXPECT_EQ(header_values(harness::read_file(alice.front()), "X-Chainmail-Route"),
            std::vector<std::string>{"devops@pydis.wtf -> group devops -> alice"});
  EXPECT_TRUE(files("alice", "INBOX").empty());
  // bob opted out in the directory: INBOX, still with the trace.
  const auto bob = files("bob", "INBOX");
  ASSERT_EQ(bob.size(), 1U);
  EXPECT_EQ(header_values(harness::read_file(bob.front()), "X-Chainmail-Route"),
            std::vector<std::string>{"devops@pydis.wtf -> group devops -> bob"});
  EXPECT_TRUE(files("bob", "devops").empty());
}

}  // namespace
}  // namespace chainmail::integration
