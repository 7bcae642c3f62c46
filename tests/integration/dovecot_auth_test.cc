// dovecot_auth_test.cc: chainmail's Dovecot auth plugin (libauthdb_chainmail.so, passdb and userdb driver
// `chainmail`) in a real Dovecot against a real slapd loaded from conf/ldap/demo.ldif, through
// `doveadm auth test` and `doveadm user`. Both daemons start once for the suite (one ctest entry).
//
// The suite adds a few entries at run time (ldapadd as the rootdn, in its private slapd): a service account
// on the internal domain, two entries one login matches, and a user who opted out of group folders. The
// Dovecot runs with auth_username_chars empty, so filter metacharacters reach the plugin (production keeps
// Dovecot's default set, which refuses them even earlier) and the plugin's escaping is what is tested.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "harness/dovecot.h"
#include "harness/files.h"
#include "harness/process.h"
#include "harness/slapd.h"
#include "harness/temp_dir.h"
#include "harness/tls.h"
#include "integration_support.h"

namespace chainmail::integration {
namespace {

constexpr std::string_view kAdminDn = "cn=admin,dc=box,dc=pydis,dc=wtf";
constexpr std::string_view kAdminPassword = "admin-demo";
constexpr std::string_view kUsers = "cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf";
constexpr std::string_view kMailusers = "cn=mailusers,cn=groups,cn=accounts,dc=box,dc=pydis,dc=wtf";

std::string user_entry(std::string_view uid, std::string_view mail, std::string_view password,
                       std::string_view extra = {}) {
  std::string e = "dn: uid=" + std::string(uid) + "," + std::string(kUsers) + "\n";
  e += "objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\n";
  e += "objectClass: inetOrgPerson\nobjectClass: inetUser\n";
  e += "uid: " + std::string(uid) + "\ncn: " + std::string(uid) + "\nsn: " + std::string(uid) + "\n";
  e += "mail: " + std::string(mail) + "\nuserPassword: " + std::string(password) + "\n";
  e += "memberOf: " + std::string(kMailusers) + "\n";
  e += extra;
  return e + "\n";
}

// Entries only this suite needs; the mailusers group lists them too, as FreeIPA would.
std::string suite_entries() {
  return user_entry("notify", "notify@int.pydis.wtf", "notify-pw") +
         user_entry("twin", "twin-a@pydis.wtf", "twin-pw") +  // login "twin": uid=twin ...
         user_entry("twin2", "twin@pydis.wtf", "twin-pw") +   // ... and mail=twin@pydis.wtf
         user_entry("optout", "optout@pydis.wtf", "optout-pw", "description: TRUE\n");
}

std::string mailusers_change() {
  std::string c = "dn: " + std::string(kMailusers) + "\nchangetype: modify\nadd: member\n";
  for (const char* uid : {"notify", "twin", "twin2", "optout"}) {
    c += "member: uid=" + std::string(uid) + "," + std::string(kUsers) + "\n";
  }
  return c;
}

// The chainmail.conf of the suite: conf/chainmail.conf for this slapd, with [auth] templates putting homes
// under the Dovecot's mail root, mail stored as the system user "mail", and an opt-out attribute.
std::string suite_config(const std::string& uri, const std::filesystem::path& mail_root) {
  std::string text = demo_config({uri}, {{"search_timeout_ms", "1000"}, {"connect_timeout_ms", "1000"}});
  const std::string auth =
      "uid = \"mail\"\ngid = \"mail\"\nhome = " + toml_string(mail_root.string() + "/%u") + "\n";
  const std::string lmtp = "opt_out_attribute = \"description\"\n";
  for (const auto& [section, body] :
       {std::pair{std::string("[auth]"), auth}, std::pair{std::string("[lmtp]"), lmtp}}) {
    const auto at = text.find("\n" + section + "\n");
    if (at == std::string::npos) {
      text += "\n" + section + "\n" + body;
    } else {
      text.insert(at + section.size() + 2, body);
    }
  }
  return text;
}

std::size_t count_lines(const std::string& text, std::string_view a, std::string_view b = {}) {
  std::size_t n = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(a) != std::string::npos && (b.empty() || line.find(b) != std::string::npos)) ++n;
  }
  return n;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

class DovecotAuth : public SlapdSuite<> {
 public:
  static void SetUpTestSuite() {
    SlapdSuite<>::SetUpTestSuite();
    error() = std::string();
    try {
      const std::vector<std::string> admin = {
          "-x", "-H", slapd().uri(), "-D", std::string(kAdminDn), "-w", std::string(kAdminPassword)};
      auto ldap = [&](const char* tool, const std::string& input) {
        std::vector<std::string> argv = {tool};
        argv.insert(argv.end(), admin.begin(), admin.end());
        const harness::RunResult r = harness::run(argv, input);
        if (r.exit_code != 0) throw std::runtime_error(std::string(tool) + " failed: " + r.err);
      };
      ldap("ldapadd", suite_entries());
      ldap("ldapmodify", mailusers_change());
      cert_ptr() = std::make_unique<harness::TlsCert>();
      dovecot_ptr() = std::make_unique<harness::Dovecot>();
      config_ptr() = std::make_unique<ConfigFile>(suite_config(slapd().uri(), dovecot().mail_root()));
      harness::DovecotOptions options;
      options.chainmail_config = config_ptr()->path();
      options.auth_username_chars = "";
      options.ssl_cert = cert_ptr()->cert_file();
      options.ssl_key = cert_ptr()->key_file();
      dovecot().start(options);
    } catch (const std::exception& e) {
      dovecot_ptr().reset();
      error() = e.what();
    }
  }
  static void TearDownTestSuite() {
    dovecot_ptr().reset();
    config_ptr().reset();
    cert_ptr().reset();
    SlapdSuite<>::TearDownTestSuite();
  }

 protected:
  void SetUp() override {
    SlapdSuite<>::SetUp();
    ASSERT_NE(dovecot_ptr(), nullptr) << "Dovecot did not start: " << error();
    ASSERT_TRUE(dovecot().running()) << harness::log_tail(dovecot().log_path());
  }
  void TearDown() override {
    if (HasFailure() && dovecot_ptr()) {
      std::cerr << "dovecot log tail:\n" << harness::log_tail(dovecot().log_path(), 3000) << "\n";
    }
    // The plugin runs inside Dovecot: a sanitizer report lands in Dovecot's log.
    if (dovecot_ptr()) {
      EXPECT_FALSE(has_sanitizer_report(harness::read_file(dovecot().log_path())));
    }
  }

  static harness::Dovecot& dovecot() { return *dovecot_ptr(); }
  static const harness::TlsCert& cert() { return *cert_ptr(); }

  // Dovecot's log from `offset` on (what one test caused).
  static std::string log_since(std::size_t offset) {
    const std::string all = harness::read_file(dovecot().log_path());
    return offset < all.size() ? all.substr(offset) : std::string();
  }
  static std::size_t log_size() { return harness::read_file(dovecot().log_path()).size(); }

  struct Attempt {
    harness::RunResult run;
    std::string log;  // Dovecot's log lines it caused
    bool succeeded() const {
      return run.exit_code == 0 && run.out.find("auth succeeded") != std::string::npos;
    }
    bool failed() const { return run.exit_code != 0 && run.out.find("auth failed") != std::string::npos; }
    bool temporary() const { return run.out.find("code=temp_fail") != std::string::npos; }
  };
  static Attempt login(std::string_view user, std::string_view password) {
    const std::size_t before = log_size();
    Attempt a;
    a.run = dovecot().auth_test(user, password);
    // The worker's log line may land just after doveadm's answer.
    harness::wait_for_text(dovecot().log_path(), "Finished passdb lookup", std::chrono::milliseconds(200));
    a.log = log_since(before);
    return a;
  }

 private:
  static std::unique_ptr<harness::Dovecot>& dovecot_ptr() {
    static std::unique_ptr<harness::Dovecot> d;
    return d;
  }
  static std::unique_ptr<harness::TlsCert>& cert_ptr() {
    static std::unique_ptr<harness::TlsCert> c;
    return c;
  }
  static std::unique_ptr<ConfigFile>& config_ptr() {
    static std::unique_ptr<ConfigFile> c;
    return c;
  }
  static std::string& error() {
    static std::string e;
    return e;
  }
};

std::string describe(const harness::RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

TEST_F(DovecotAuth, RightPasswordAnswersTheUid) {
  const Attempt a = login("alice", "alice-pw");
  EXPECT_TRUE(a.succeeded()) << describe(a.run);
  EXPECT_NE(a.run.out.find("user=alice"), std::string::npos) << a.run.out;
}

TEST_F(DovecotAuth, WrongPasswordIsAMismatch) {
  const Attempt a = login("alice", "not-alice-pw");
  EXPECT_TRUE(a.failed()) << describe(a.run);
  EXPECT_FALSE(a.temporary()) << a.run.out;
  EXPECT_NE(a.log.find("chainmail(alice): Password mismatch"), std::string::npos) << a.log;
}

TEST_F(DovecotAuth, EmptyPasswordIsRefusedWithoutABind) {
  const std::size_t slapd_before = harness::read_file(slapd().log_path()).size();
  const Attempt a = login("bob", "");
  EXPECT_TRUE(a.failed()) << describe(a.run);
  EXPECT_FALSE(a.temporary()) << a.run.out;
  EXPECT_NE(a.log.find("empty password"), std::string::npos) << a.log;
  const std::string slapd_log = harness::read_file(slapd().log_path()).substr(slapd_before);
  EXPECT_EQ(count_lines(slapd_log, "BIND dn=\"uid=bob,"), 0U) << slapd_log;
}

TEST_F(DovecotAuth, OverLongPasswordIsRefusedWithoutABind) {
  const Attempt a = login("bob", std::string(1025, 'x'));  // auth.max_password_length = 1024
  EXPECT_TRUE(a.failed()) << describe(a.run);
  EXPECT_NE(a.log.find("password longer"), std::string::npos) << a.log;
}

TEST_F(DovecotAuth, LockedAccountIsRefusedAndLogged) {
  const Attempt a = login("mallory", "mallory-pw");  // the right password
  EXPECT_TRUE(a.failed()) << describe(a.run);
  EXPECT_FALSE(a.temporary()) << a.run.out;
  EXPECT_NE(a.log.find("account locked"), std::string::npos) << a.log;
}

TEST_F(DovecotAuth, OutsideTheGateIsRefusedAndLogged) {
  const Attempt a = login("outsider", "outsider-pw");  // the right password, not in mailusers
  EXPECT_TRUE(a.failed()) << describe(a.run);
  EXPECT_FALSE(a.temporary()) << a.run.out;
  EXPECT_NE(a.log.find("not a member of cn=mailusers"), std::string::npos) << a.log;
}

TEST_F(DovecotAuth, LoginFormsAllBecomeTheUid) {
  const struct {
    const char* login;
    const char* password;
    const char* uid;
  } cases[] = {
      {"ALICE", "alice-pw", "alice"},
      {"alice@pydis.wtf", "alice-pw", "alice"},
      {"alice@pydis.com", "alice-pw", "alice"},  // alias domain
      {"Alice@PyDis.Com", "alice-pw", "alice"},
      {"alice@owlcorp.uk", "alice-pw", "alice"},
      {"Dave@pydis.wtf", "dave-pw", nullptr},           // dave has no password: a mismatch, not a success
      {"notify@int.pydis.wtf", "notify-pw", "notify"},  // service account, internal domain
      {"NOTIFY", "notify-pw", "notify"},
  };
  for (const auto& c : cases) {
    const Attempt a = login(c.login, c.password);
    if (c.uid == nullptr) {
      EXPECT_TRUE(a.failed()) << c.login << ": " << describe(a.run);
      continue;
    }
    EXPECT_TRUE(a.succeeded()) << c.login << ": " << describe(a.run) << "\n" << a.log;
    EXPECT_NE(a.run.out.find("user=" + std::string(c.uid) + "\n"), std::string::npos)
        << c.login << ": " << a.run.out;
  }
}

TEST_F(DovecotAuth, ForeignDomainIsUnknown) {
  const Attempt a = login("alice@example.org", "alice-pw");
  EXPECT_TRUE(a.failed()) << describe(a.run);
  EXPECT_NE(a.log.find("domain is not hosted here"), std::string::npos) << a.log;
}

TEST_F(DovecotAuth, FilterMetacharactersMatchNobody) {
  const std::size_t slapd_before = harness::read_file(slapd().log_path()).size();
  for (const char* name : {"*)(uid=*", "*", "alice)(|(uid=*", "al*", "alice\\"}) {
    const Attempt a = login(name, "alice-pw");
    EXPECT_TRUE(a.failed()) << name << ": " << describe(a.run);
    EXPECT_FALSE(a.temporary()) << name << ": " << a.run.out;
  }
  // The values reached the server escaped, as literals.
  const std::string slapd_log = harness::read_file(slapd().log_path()).substr(slapd_before);
  EXPECT_GE(count_lines(slapd_log, "SRCH", "(uid=\\2A\\29\\28uid=\\2A)"), 1U) << slapd_log;
  EXPECT_EQ(count_lines(slapd_log, "BIND dn=\"uid="), 0U) << slapd_log;
}

TEST_F(DovecotAuth, SeveralEntriesForOneLoginAreInternalFailure) {
  const Attempt a = login("twin", "twin-pw");
  EXPECT_TRUE(a.failed()) << describe(a.run);
  EXPECT_TRUE(a.temporary()) << a.run.out;
  EXPECT_NE(a.log.find("several directory entries"), std::string::npos) << a.log;
}

TEST_F(DovecotAuth, OneSearchAndOneBindPerLogin) {
  ASSERT_TRUE(login("bob", "bob-pw").succeeded());  // the worker's connections are open from here on
  const std::size_t before = harness::read_file(slapd().log_path()).size();
  const Attempt a = login("bob", "bob-pw");
  EXPECT_TRUE(a.succeeded()) << describe(a.run);
  harness::wait_for_text(slapd().log_path(), "RESULT", std::chrono::milliseconds(200));
  const std::string slapd_log = harness::read_file(slapd().log_path()).substr(before);
  EXPECT_EQ(count_lines(slapd_log, "SRCH base=", "uid=bob"), 1U) << slapd_log;
  // slapd logs a bind twice (request, then mechanism); method=128 is the request.
  EXPECT_EQ(count_lines(slapd_log, "BIND dn=\"uid=bob,", "method=128"), 1U) << slapd_log;
  EXPECT_EQ(count_lines(slapd_log, "BIND dn=\"uid=chainmail,"), 0U) << slapd_log;  // no reconnect
}

TEST_F(DovecotAuth, CredentialLookupsAreUnsupportedAndSaySo) {
  const std::size_t before = log_size();
  const harness::RunResult r = dovecot().doveadm({"auth", "lookup", "alice"});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  harness::wait_for_text(dovecot().log_path(), "credential lookups are not supported",
                         std::chrono::seconds(2));
  EXPECT_NE(log_since(before).find("credential lookups are not supported"), std::string::npos)
      << log_since(before);
}

TEST_F(DovecotAuth, UserdbAnswersTemplates) {
  const harness::RunResult r = dovecot().user("alice");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const std::string home = (dovecot().mail_root() / "alice").string();
  for (const std::string& want :
       {std::string("uid\t8\n"), std::string("gid\t8\n"), "home\t" + home + "\n",
        std::string("mail\tmaildir:~/Maildir\n"), std::string("sieve\t~/.dovecot.sieve\n"),
        std::string("sieve_dir\t~/sieve\n")}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << "want " << want << "in\n" << r.out;
  }
  EXPECT_EQ(r.out.find("chainmail_no_folders"), std::string::npos) << r.out;
}

TEST_F(DovecotAuth, UserdbByAddressAndCase) {
  for (const char* login : {"ALICE", "alice@pydis.com", "alice@localhost"}) {  // localhost: LMTP's form
    const harness::RunResult r = dovecot().user(login);
    EXPECT_EQ(r.exit_code, 0) << login << ": " << describe(r);
    EXPECT_NE(r.out.find("home\t" + (dovecot().mail_root() / "alice").string() + "\n"), std::string::npos)
        << login << ": " << r.out;
  }
}

TEST_F(DovecotAuth, UserdbOptOutField) {
  const harness::RunResult r = dovecot().user("optout");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("chainmail_no_folders\tyes\n"), std::string::npos) << r.out;
}

TEST_F(DovecotAuth, UserdbUnknownUsers) {
  // Not in the directory; outside the gate; a foreign domain. doveadm exits 67 (EX_NOUSER) for unknown.
  for (const char* login : {"nobody", "outsider", "fredrick", "alice@example.org"}) {
    const harness::RunResult r = dovecot().user(login);
    EXPECT_EQ(r.exit_code, 67) << login << ": " << describe(r);
  }
}

TEST_F(DovecotAuth, UserIterationListsTheGate) {
  const harness::RunResult r = dovecot().user("*");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const std::vector<std::string> users = lines_of(r.out);
  auto has = [&](const char* u) { return std::find(users.begin(), users.end(), u) != users.end(); };
  for (const char* u : {"alice", "bob", "carol", "dave", "joe", "mallory", "staffer", "notify", "optout"}) {
    EXPECT_TRUE(has(u)) << u << " missing from\n" << r.out;
  }
  for (const char* u : {"outsider", "fredrick", "nomail", "fortune", "chainmail"}) {
    EXPECT_FALSE(has(u)) << u << " listed in\n" << r.out;
  }
}

// IMAP as a mail client does it (Python's imaplib): implicit TLS and STARTTLS, the certificate verified,
// login by address on an alias domain; then a wrong password. Prints one line per step.
constexpr const char* kImapScript = R"(
import imaplib, ssl, sys
port, starttls_port, ca, user, password = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
m = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx)
print("login", m.login(user, password)[0])
print("select", m.select("INBOX")[0])
m.logout()
m = imaplib.IMAP4("127.0.0.1", int(starttls_port))
m.starttls(ssl_context=ctx)
print("starttls-login", m.login(user, password)[0])
m.logout()
m = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx)
try:
    m.login(user, password + "-wrong")
    print("wrong-login OK")
except imaplib.IMAP4.error as e:
    print("wrong-login NO")
)";

TEST_F(DovecotAuth, ImapLoginOverTls) {
  const harness::RunResult r = harness::run(
      {"/usr/bin/python3", "-c", kImapScript, std::to_string(dovecot().imaps_port()),
       std::to_string(dovecot().imap_port()), cert().cert_file().string(), "alice@pydis.com", "alice-pw"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "login OK\nselect OK\nstarttls-login OK\nwrong-login NO\n");
  // The mailbox is the uid's, whatever the login.
  EXPECT_TRUE(std::filesystem::exists(dovecot().mail_root() / "alice" / "Maildir")) << r.out;
}

// LMTP asks the same userdb: <uid>@<routing.mailbox_domain> (what the milter targets) and an address on an
// alias domain both land in the uid's Maildir under the [auth] home template.
constexpr const char* kLmtpScript = R"(
import smtplib, sys
socket, rcpt = sys.argv[1:3]
c = smtplib.LMTP(socket)
c.sendmail("sender@example.org", [rcpt], "Subject: lmtp " + rcpt + "\r\n\r\nhello\r\n")
c.quit()
print("delivered")
)";

TEST_F(DovecotAuth, LmtpDeliversToTheUidsMaildir) {
  const std::filesystem::path fresh = dovecot().mail_root() / "bob" / "Maildir" / "new";
  auto count = [&] {
    std::error_code ec;
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(fresh, ec)) n += e.is_regular_file() ? 1 : 0;
    return n;
  };
  const std::size_t before = count();
  for (const char* rcpt : {"bob@localhost", "Bob@PyDis.com"}) {
    const harness::RunResult r =
        harness::run({"/usr/bin/python3", "-c", kLmtpScript, dovecot().lmtp_socket().string(), rcpt});
    EXPECT_EQ(r.exit_code, 0) << rcpt << ": " << describe(r);
  }
  EXPECT_EQ(count(), before + 2) << harness::log_tail(dovecot().log_path());
}

// Postfix's side of the auth-client protocol (what smtpd_sasl_type = dovecot speaks), on the unix socket and
// on the inet listener: the handshake, then AUTH PLAIN. Prints the reply line to the AUTH. (no-penalty: the
// IMAP test's failed login put 127.0.0.1 under Dovecot's auth penalty, seconds per attempt.)
constexpr const char* kSaslScript = R"(
import base64, os, socket, sys
where, user, password = sys.argv[1:4]
if where.startswith("/"):
    s = socket.socket(socket.AF_UNIX); s.connect(where)
else:
    s = socket.create_connection(("127.0.0.1", int(where)))
f = s.makefile("rwb")
f.write(b"VERSION\t1\t2\nCPID\t%d\n" % os.getpid()); f.flush()
while f.readline().strip() != b"DONE":
    pass
resp = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
f.write(("AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tsecured\tno-penalty\tresp=" + resp + "\n").encode())
f.flush()
print(f.readline().decode().strip())
)";

TEST_F(DovecotAuth, PostfixAuthClientListeners) {
  for (const std::string& where :
       {dovecot().auth_client_socket().string(), std::to_string(dovecot().auth_port())}) {
    const harness::RunResult ok =
        harness::run({"/usr/bin/python3", "-c", kSaslScript, where, "ALICE@pydis.com", "alice-pw"});
    // The canonical name, whatever the client typed (Dovecot adds original_user= and, from an auth worker,
    // an empty field).
    EXPECT_EQ(ok.out.rfind("OK\t1\tuser=alice", 0), 0U) << where << ": " << describe(ok);
    EXPECT_TRUE(ok.out.size() > 15 && (ok.out[15] == '\t' || ok.out[15] == '\n')) << ok.out;
    const harness::RunResult bad =
        harness::run({"/usr/bin/python3", "-c", kSaslScript, where, "carol", "wrong"});
    EXPECT_EQ(bad.out.rfind("FAIL\t1\t", 0), 0U) << where << ": " << describe(bad);
  }
}

TEST_F(DovecotAuth, OverLongLoginIsRefusedWithoutALookup) {
  const Attempt a = login(std::string(321, 'a'), "alice-pw");  // auth.max_login_length = 320
  EXPECT_TRUE(a.failed()) << describe(a.run);
  EXPECT_NE(a.log.find("login longer than 320"), std::string::npos) << a.log;
}

// Directory trouble is a temporary failure, never "wrong password". Runs last in the file: it stops slapd
// (SetUp restarts it for any later test).
TEST_F(DovecotAuth, SlapdStoppedIsTemporaryFailure) {
  slapd().stop();
  const Attempt a = login("alice", "alice-pw");
  EXPECT_TRUE(a.failed()) << describe(a.run);
  EXPECT_TRUE(a.temporary()) << a.run.out;
  EXPECT_EQ(a.log.find("Password mismatch"), std::string::npos) << a.log;
  EXPECT_NE(a.log.find("directory trouble"), std::string::npos) << a.log;
  const harness::RunResult u = dovecot().user("alice");
  EXPECT_EQ(u.exit_code, 75) << describe(u);  // EX_TEMPFAIL
  const harness::RunResult all = dovecot().user("*");
  EXPECT_NE(all.exit_code, 0) << describe(all);
  slapd().restart();
  EXPECT_TRUE(login("alice", "alice-pw").succeeded());  // and it recovers
}

TEST_F(DovecotAuth, SlapdHungIsTemporaryFailureWithinTheTimeout) {
  slapd().pause();
  const auto start = std::chrono::steady_clock::now();
  const Attempt a = login("alice", "alice-pw");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  slapd().resume();
  EXPECT_TRUE(a.failed()) << describe(a.run);
  EXPECT_TRUE(a.temporary()) << a.run.out;
  EXPECT_LT(elapsed, std::chrono::seconds(8));  // search_timeout_ms = 1000 (+ a reconnect), not forever
  EXPECT_TRUE(login("alice", "alice-pw").succeeded());
}

}  // namespace
}  // namespace chainmail::integration
