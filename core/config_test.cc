#include "core/config.h"

#include <gtest/gtest.h>

#include <set>

namespace chainmail {
namespace {

TEST(Config, EveryParameterIsDeclaredOnceWithHelp) {
  std::set<std::string_view> keys;
  for (const auto& p : params()) {
    EXPECT_TRUE(keys.insert(p.key).second) << "declared twice: " << p.key;
    EXPECT_FALSE(p.help.empty()) << p.key;
    if (const auto* i = std::get_if<IntParam>(&p.kind)) {
      EXPECT_LE(i->min, i->def) << p.key;
      EXPECT_LE(i->def, i->max) << p.key;
    }
  }
}

TEST(Config, DefaultsNeedOnlyADirectory) {
  Config c = default_config();
  EXPECT_EQ(c.routing.recipient_delimiter, "+");
  EXPECT_EQ(c.directory.forward_attribute, "registeredAddress");
  const auto errors = validate(c);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors.front().key, "directory.uris");
  c.directory.uris = {"ldap://127.0.0.1:389"};
  EXPECT_TRUE(validate(c).empty());
}

TEST(Config, BasesAreJoinedWithBaseDn) {
  Config c = default_config();
  c.directory.base_dn = "dc=box,dc=pydis,dc=wtf";
  EXPECT_EQ(c.user_base_dn(), "cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf");
  c.directory.group_base = "cn=groups,dc=box,dc=pydis,dc=wtf";
  EXPECT_EQ(c.group_base_dn(), "cn=groups,dc=box,dc=pydis,dc=wtf");
}

TEST(Config, ValidateFindsEveryProblem) {
  Config c = default_config();
  c.directory.uris = {"http://x"};
  c.domains.aliases = {"pydis.wtf", "bad domain"};
  c.routing.mailbox_domain = "pydis.wtf";
  c.routing.recipient_delimiter = "@";
  c.transport = {{"not an address", {"svc"}}, {"a@pydis.wtf", {"two", "services"}}};
  c.aliases = {{"x", {}}, {"y", {"bad target!"}}};
  c.directory.user_filter = "mail=x";
  std::set<std::string> keys;
  for (const auto& e : validate(c)) keys.insert(e.key);
  for (const char* want : {"directory.uris", "domains.aliases", "routing.mailbox_domain",
                           "routing.recipient_delimiter", "transport.not an address", "transport.a@pydis.wtf",
                           "aliases.x", "aliases.y", "directory.user_filter"}) {
    EXPECT_EQ(keys.count(want), 1U) << want;
  }
}

TEST(Config, ValidateChecksServicesAndReportFolders) {
  Config c = default_config();
  c.directory.uris = {"ldap://127.0.0.1:389"};
  c.services = {{"dmarc", {"dmarc-reports"}},
                {"dmarc-b@pydis.wtf", {"dmarc-reports:/srv/b/Maildir"}},
                {"rel", {"dmarc-reports:relative/Maildir"}},
                {"later", {"fortune-cookie"}},
                {"two", {"dmarc-reports", "dmarc-reports"}},
                {"bad key!", {"dmarc-reports"}}};
  c.service_mail.log = "file";
  c.dmarc_reports.maildir = "Maildir";
  c.dmarc_reports.folder_new = "../New";
  c.dmarc_reports.folder_invalid = "Failures";
  std::set<std::string> keys;
  for (const auto& e : validate(c)) keys.insert(e.key);
  const std::set<std::string> want = {"services.rel",
                                      "services.later",
                                      "services.two",
                                      "services.bad key!",
                                      "service_mail.log",
                                      "dmarc_reports.maildir",
                                      "dmarc_reports.folder_new",
                                      "dmarc_reports.folder_failures"};
  EXPECT_EQ(keys, want);
  EXPECT_EQ(parse_service_spec("dmarc-reports:/a:b").argument, "/a:b");
  EXPECT_EQ(parse_service_spec("dmarc-reports").argument, "");
}

TEST(Config, ValidateChecksAutoreplyAndExec) {
  Config c = default_config();
  c.directory.uris = {"ldap://127.0.0.1:389"};
  c.services = {{"fortune", {"autoreply"}},
                {"arg", {"autoreply:x"}},
                {"router", {"exec:/usr/local/bin/post-report --verbose"}},
                {"relcmd", {"exec:post-report"}},
                {"nocmd", {"exec"}}};
  c.autoreply.state_dir = "state";
  c.autoreply.from = "not an address";
  c.autoreply.subject = "Re: %s\r\nBcc: x@y";
  c.autoreply.command = {"fortune"};
  std::set<std::string> keys;
  for (const auto& e : validate(c)) keys.insert(e.key);
  const std::set<std::string> want = {"services.arg",        "services.relcmd", "services.nocmd",
                                      "autoreply.state_dir", "autoreply.from",  "autoreply.subject",
                                      "autoreply.command"};
  EXPECT_EQ(keys, want);
  EXPECT_EQ(exec_argv(c, parse_service_spec("exec:/bin/a  b\tc")),
            (std::vector<std::string>{"/bin/a", "b", "c"}));
  c.exec.command = {"/bin/x", "y z"};
  EXPECT_EQ(exec_argv(c, parse_service_spec("exec")), c.exec.command);
}

}  // namespace
}  // namespace chainmail
