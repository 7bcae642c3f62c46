// The "senders" map: who may send as an address, against a fake directory.
#include "core/senders.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/address.h"

namespace chainmail {
namespace {

class FakeDirectory : public Directory {
 public:
  void user(const std::string& uid, std::vector<std::string> mail, std::vector<std::string> forward = {}) {
    Entry e;
    e.dn = "uid=" + uid + ",cn=users,dc=t";
    e.uid = uid;
    e.mail = std::move(mail);
    e.forward = std::move(forward);
    e.is_user = true;
    entries_.push_back(std::make_shared<const Entry>(std::move(e)));
  }
  std::set<std::string> failing;   // lower-case addresses that answer trouble
  std::vector<std::string> asked;  // every user_by_mail key, as given

  Lookup<EntryPtr> user_by_mail(std::string_view address) override {
    asked.emplace_back(address);
    if (failing.count(ascii_lower(address)) != 0)
      return Lookup<EntryPtr>::trouble(Trouble::temporary("down"));
    for (const auto& e : entries_) {
      for (const auto& m : e->mail) {
        if (iequals(m, address)) return Lookup<EntryPtr>::found(e);
      }
    }
    return Lookup<EntryPtr>::not_found();
  }
  Lookup<EntryPtr> group_by_name(std::string_view /*name*/) override { return Lookup<EntryPtr>::not_found(); }
  Lookup<EntryPtr> entry_by_dn(std::string_view /*dn*/) override { return Lookup<EntryPtr>::not_found(); }

 private:
  std::vector<EntryPtr> entries_;
};

class SendersTest : public ::testing::Test {
 protected:
  SendersTest() : config_(default_config()) {
    config_.domains.main = "pydis.wtf";
    config_.domains.aliases = {"pydis.com", "PythonDiscord.com"};
    config_.domains.internal = "int.pydis.wtf";
    config_.routing.recipient_delimiter = "+";
    config_.routing.mailbox_domain = "localhost";
    config_.aliases = {{"staff", {"alice"}}};
    dir_.user("alice", {"alice@pydis.wtf"});
    dir_.user("bob", {"bob@pydis.wtf"});
    dir_.user("joe", {"joe@pydis.wtf"}, {"joe@jb3.dev"});
    dir_.user("Dave", {"Dave@pydis.wtf"});
    dir_.user("dmarc", {"dmarc@int.pydis.wtf"});
    dir_.user("outsider", {"outsider@example.org"});
    dir_.user("bad,uid", {"bad@pydis.wtf"});
    dir_.user("", {"nouid@pydis.wtf"});
  }
  std::string reply(std::string_view key) {
    return senders_socketmap_reply(sender_logins(config_, dir_, key));
  }

  Config config_;
  FakeDirectory dir_;
};

TEST_F(SendersTest, Table) {
  struct Case {
    std::string key;
    std::string want;
  };
  const Case cases[] = {
      {"alice@pydis.wtf", "OK alice"},
      {"ALICE@PYDIS.WTF", "OK alice"},
      {"alice@pydis.com", "OK alice"},
      {"alice@pythondiscord.com", "OK alice"},  // alias domains compare case-insensitively
      {"alice+lists@pydis.com", "OK alice"},    // the detail is not part of the owner's address
      {"bob@pydis.wtf", "OK bob"},
      {"joe@pydis.wtf", "OK joe"},            // mail forwarded, still the person's address
      {"dave@pydis.wtf", "OK dave"},          // logins are the lower-case uid
      {"dmarc@int.pydis.wtf", "OK dmarc"},    // a service account, its internal address
      {"dmarc@pydis.wtf", "NOTFOUND "},       // not the service account's address
      {"alice@int.pydis.wtf", "NOTFOUND "},   // the internal domain is not an alias domain
      {"alice@localhost", "NOTFOUND "},       // the mailbox domain belongs to nobody
      {"outsider@example.org", "NOTFOUND "},  // not hosted, even if the directory knows it
      {"staff@pydis.wtf", "NOTFOUND "},       // a static alias: nobody sends as it
      {"nobody@pydis.wtf", "NOTFOUND "},
      {"alice", "NOTFOUND "},  // not an address (Postfix may ask bare keys)
      {"@pydis.wtf", "NOTFOUND "},
      {"\"alice\"@pydis.wtf", "OK alice"},  // the same mailbox as alice@ (RFC 5321 4.1.2)
      {"\"a,b\"@pydis.wtf", "NOTFOUND "},
      {"", "NOTFOUND "},
      {"bad@pydis.wtf", "TEMP uid=bad,uid,cn=users,dc=t owns bad@pydis.wtf but its uid is not a login name"},
      {"nouid@pydis.wtf", "TEMP uid=,cn=users,dc=t owns nouid@pydis.wtf but its uid is not a login name"},
  };
  for (const auto& c : cases) EXPECT_EQ(reply(c.key), c.want) << c.key;
}

TEST_F(SendersTest, AsksTheDirectoryForTheCanonicalAddress) {
  EXPECT_EQ(reply("Alice+x@PyDis.Com"), "OK alice");
  ASSERT_EQ(dir_.asked.size(), 1U);
  EXPECT_EQ(dir_.asked[0], "Alice@pydis.wtf");
}

TEST_F(SendersTest, ForeignDomainsNeverReachTheDirectory) {
  EXPECT_EQ(reply("alice@example.org"), "NOTFOUND ");
  EXPECT_EQ(reply("not an address"), "NOTFOUND ");
  EXPECT_TRUE(dir_.asked.empty());
}

TEST_F(SendersTest, TroubleIsNeverNotFound) {
  dir_.failing.insert("alice@pydis.wtf");
  const auto logins = sender_logins(config_, dir_, "alice@pydis.com");
  ASSERT_TRUE(logins.is_trouble());
  EXPECT_EQ(senders_socketmap_reply(logins), "TEMP down");
}

TEST_F(SendersTest, NoInternalDomainConfigured) {
  config_.domains.internal.clear();
  EXPECT_EQ(reply("dmarc@int.pydis.wtf"), "NOTFOUND ");
}

TEST(SendersReply, SeveralLoginsAndSanitisedTrouble) {
  EXPECT_EQ(senders_socketmap_reply(Lookup<std::vector<std::string>>::found({"a", "b"})), "OK a,b");
  EXPECT_EQ(senders_socketmap_reply(Lookup<std::vector<std::string>>::found({})), "NOTFOUND ");
  EXPECT_EQ(senders_socketmap_reply(Lookup<std::vector<std::string>>::trouble(Trouble::temporary("x\ny"))),
            "TEMP x\\x0ay");
}

}  // namespace
}  // namespace chainmail
