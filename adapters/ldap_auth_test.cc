// ldap_auth_test.cc - LdapAuth without a server: options from chainmail.conf, and every refusal that must
// happen before the directory is asked. A closed port stands in for a dead server (trouble, never a
// mismatch). The real-server cases are in tests/integration/dovecot_auth_test.cc.
#include "adapters/ldap_auth.h"

#include <gtest/gtest.h>

#include <string>

#include "adapters/config_loader.h"

namespace chainmail {
namespace {

// 127.0.0.1:1 refuses connections at once.
constexpr std::string_view kConfig = R"(
[domains]
main = "pydis.wtf"
aliases = ["pydis.com"]
internal = "int.pydis.wtf"
[routing]
mailbox_domain = "localhost"
[directory]
uris = ["ldap://127.0.0.1:1/"]
base_dn = "dc=box,dc=pydis,dc=wtf"
connect_timeout_ms = 500
[lmtp]
opt_out_attribute = "description"
)";

Config config() {
  auto loaded = load_config_text(kConfig, "test.conf", "/");
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors.front());
  return loaded.config;
}

TEST(LdapAuthOptions, FromConfig) {
  const LdapAuthOptions o = LdapAuthOptions::from(config());
  EXPECT_EQ(o.gate_dn, "cn=mailusers,cn=groups,cn=accounts,dc=box,dc=pydis,dc=wtf");
  EXPECT_EQ(o.user_base, "cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf");
  EXPECT_EQ(o.gate_attribute, "memberOf");
  EXPECT_EQ(o.lock_attribute, "nsAccountLock");
  EXPECT_EQ(o.opt_out_attribute, "description");
  EXPECT_EQ(o.domains.main, "pydis.wtf");
  EXPECT_EQ(o.domains.internal, "int.pydis.wtf");
  EXPECT_EQ(o.domains.mailbox, "localhost");
  EXPECT_EQ(o.max_login_length, 320U);
  EXPECT_EQ(o.max_password_length, 1024U);
}

TEST(LdapAuthOptions, NoGateGroup) {
  Config c = config();
  c.auth.gate_group = "";
  EXPECT_EQ(LdapAuthOptions::from(c).gate_dn, "");
  c.auth.gate_group = "mail,users";  // escaped as a DN value
  EXPECT_EQ(LdapAuthOptions::from(c).gate_dn, "cn=mail\\,users,cn=groups,cn=accounts,dc=box,dc=pydis,dc=wtf");
}

TEST(LdapAuthVerify, RefusedBeforeTheDirectory) {
  LdapAuth auth(LdapAuthOptions::from(config()));
  const struct {
    std::string login;
    std::string password;
    Verdict want;
  } cases[] = {
      {"alice", "", Verdict::refused},
      {"alice", std::string(1025, 'x'), Verdict::refused},
      {"alice@example.org", "pw", Verdict::unknown},
      {"", "pw", Verdict::unknown},
      {std::string(321, 'a'), "pw", Verdict::unknown},
      {"a b", "pw", Verdict::unknown},
  };
  for (const auto& c : cases) {
    const AuthResult r = auth.verify(c.login, c.password);
    EXPECT_EQ(r.verdict, c.want) << c.login.substr(0, 20) << ": " << r.reason;
    EXPECT_FALSE(r.reason.empty());
  }
  EXPECT_EQ(auth.searches(), 0U);
  EXPECT_EQ(auth.binds(), 0U);
}

TEST(LdapAuthVerify, DeadServerIsTroubleNeverAMismatch) {
  LdapAuth auth(LdapAuthOptions::from(config()));
  const AuthResult r = auth.verify("alice", "alice-pw");
  EXPECT_EQ(r.verdict, Verdict::trouble) << r.reason;
  EXPECT_NE(r.reason.find("127.0.0.1:1"), std::string::npos) << r.reason;
  EXPECT_EQ(auth.binds(), 0U);
  EXPECT_TRUE(auth.find("alice").is_trouble());
  EXPECT_TRUE(auth.list_users().is_trouble());
  EXPECT_TRUE(auth.find("alice@example.org").is_not_found());  // no lookup for a foreign domain
}

}  // namespace
}  // namespace chainmail
