// ldap_failure_test.cc: `chainmail route` when the directory is down, hung, partly down or refuses the bind.
// Trouble must never read as "unknown": the CLI exits 75 (temporary) or 78 (configuration), never 1.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "harness/net.h"
#include "integration_support.h"

namespace chainmail::integration {
namespace {

using std::chrono::seconds;

// Small timeouts: a hung server must turn into trouble quickly.
std::map<std::string, std::string> fast_timeouts() {
  return {{"connect_timeout_ms", "500"}, {"search_timeout_ms", "500"}};
}

class LdapFailure : public SlapdSuite<> {
 protected:
  static void expect_temporary(const nlohmann::json& result) {
    EXPECT_EQ(result.value("outcome", ""), "trouble") << result.dump(2);
    EXPECT_EQ(result.value("trouble", ""), "temporary") << result.dump(2);
    EXPECT_TRUE(result["targets"].empty()) << result.dump(2);
    EXPECT_FALSE(result.value("reason", "").empty()) << result.dump(2);
  }
};

TEST_F(LdapFailure, StoppedSlapdIsTemporaryTrouble) {
  const ConfigFile config(demo_config({slapd().uri()}, fast_timeouts()));
  slapd().stop();

  // Known, unknown and group addresses alike: trouble, never "unknown".
  RouteRun r = route(config.path(), {"joe@pydis.wtf", "nobody@pydis.wtf", "devops@pydis.wtf"});
  EXPECT_EQ(r.run.exit_code, 75) << r.run.out << r.run.err;
  EXPECT_EQ(r.run.err, "");
  ASSERT_EQ(r.json.size(), 3U) << r.run.out;
  for (const auto& result : r.json) expect_temporary(result);
  EXPECT_NE(r.json[0].value("reason", "").find(slapd().uri()), std::string::npos) << r.json[0].dump(2);

  // Rule a needs no directory: a transport rule still routes, and a foreign domain is still not hosted. The
  // exit status is that of the worst result.
  r = route(config.path(), {"fortune@int.pydis.wtf", "x@example.org"});
  EXPECT_EQ(r.run.exit_code, 1) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), 2U) << r.run.out;
  EXPECT_EQ(targets_of(r.json[0]),
            (std::vector<TargetView>{{"service", "fortune@service-mail.localhost", "transport"}}));
  EXPECT_EQ(r.json[1]["outcome"], "not-hosted");
  r = route(config.path(), {"fortune@int.pydis.wtf", "alice@pydis.wtf"});
  EXPECT_EQ(r.run.exit_code, 75) << r.run.out << r.run.err;

  slapd().restart();
  r = route(config.path(), {"joe@pydis.wtf"});
  EXPECT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
}

TEST_F(LdapFailure, PausedSlapdIsTemporaryTroubleWithinTimeouts) {
  const ConfigFile config(demo_config({slapd().uri()}, fast_timeouts()));
  slapd().pause();
  RouteRun r = route(config.path(), {"joe@pydis.wtf"}, seconds(20));
  EXPECT_FALSE(r.run.timed_out);
  EXPECT_EQ(r.run.exit_code, 75) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), 1U) << r.run.out;
  expect_temporary(r.json[0]);
  EXPECT_LT(r.elapsed, seconds(10));

  slapd().resume();
  r = route(config.path(), {"joe@pydis.wtf"});
  EXPECT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  EXPECT_EQ(targets_of(r.json[0]), (std::vector<TargetView>{{"forward", "joe@jb3.dev", "forward>external"}}));
}

TEST_F(LdapFailure, DeadFirstUriFailsOverToSecond) {
  const std::string dead = "ldap://127.0.0.1:" + std::to_string(harness::free_port()) + "/";
  const ConfigFile config(demo_config({dead, slapd().uri()}, fast_timeouts()));
  const RouteRun r = route(config.path(), {"joe@pydis.wtf", "devops@pydis.wtf"});
  EXPECT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), 2U) << r.run.out;
  EXPECT_EQ(targets_of(r.json[0]), (std::vector<TargetView>{{"forward", "joe@jb3.dev", "forward>external"}}));
  EXPECT_EQ(r.json[1]["targets"].size(), 4U) << r.json[1].dump(2);
  EXPECT_LT(r.elapsed, seconds(10));
}

// A replica that accepts connections but never answers (SIGSTOP) costs one timeout, then the next URI
// answers.
TEST_F(LdapFailure, HungFirstUriFailsOverToSecond) {
  harness::Slapd replica;
  replica.start();
  replica.pause();
  const ConfigFile config(demo_config({replica.uri(), slapd().uri()}, fast_timeouts()));
  const RouteRun r = route(config.path(), {"alice@pydis.wtf"}, seconds(20));
  EXPECT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), 1U) << r.run.out;
  EXPECT_EQ(targets_of(r.json[0]), (std::vector<TargetView>{{"mailbox", "alice@localhost", "user"}}));
  EXPECT_LT(r.elapsed, seconds(10));
}

TEST_F(LdapFailure, AllUrisDeadNamesEveryUri) {
  const std::string dead1 = "ldap://127.0.0.1:" + std::to_string(harness::free_port()) + "/";
  const std::string dead2 = "ldap://127.0.0.1:" + std::to_string(harness::free_port()) + "/";
  const ConfigFile config(demo_config({dead1, dead2}, fast_timeouts()));
  const RouteRun r = route(config.path(), {"alice@pydis.wtf"});
  EXPECT_EQ(r.run.exit_code, 75) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), 1U) << r.run.out;
  expect_temporary(r.json[0]);
  const std::string reason = r.json[0].value("reason", "");
  EXPECT_NE(reason.find(dead1), std::string::npos) << reason;
  EXPECT_NE(reason.find(dead2), std::string::npos) << reason;
}

// A refused bind will not get better by waiting: configuration trouble, exit 78 (EX_CONFIG).
TEST_F(LdapFailure, WrongBindPasswordIsConfigurationTrouble) {
  const ConfigFile config(demo_config({slapd().uri()}, {{"bind_password", R"("not-the-password")"}}));
  const RouteRun r = route(config.path(), {"joe@pydis.wtf", "nobody@pydis.wtf"});
  EXPECT_EQ(r.run.exit_code, 78) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), 2U) << r.run.out;
  for (const auto& result : r.json) {
    EXPECT_EQ(result.value("outcome", ""), "trouble") << result.dump(2);
    EXPECT_EQ(result.value("trouble", ""), "configuration") << result.dump(2);
    EXPECT_NE(result.value("reason", "").find("Invalid credentials"), std::string::npos) << result.dump(2);
    EXPECT_TRUE(result["targets"].empty());
  }
}

// A filter that matches more entries than directory.size_limit: the server stops at the limit, and the answer
// is configuration trouble naming the limit, never a guess among the entries nor "unknown".
TEST_F(LdapFailure, MoreEntriesThanTheSizeLimitIsConfigurationTrouble) {
  std::string text = demo_config({slapd().uri()});
  const auto at = text.find("[directory]\n");
  ASSERT_NE(at, std::string::npos);
  text.insert(at + 12, "user_filter = \"(|(mail=%s)(objectClass=inetOrgPerson))\"\nsize_limit = 2\n");
  const ConfigFile config(text);
  const RouteRun r = route(config.path(), {"alice@pydis.wtf"});
  EXPECT_EQ(r.run.exit_code, 78) << r.run.out << r.run.err;
  ASSERT_EQ(r.json.size(), 1U) << r.run.out;
  EXPECT_EQ(r.json[0].value("trouble", ""), "configuration") << r.json[0].dump(2);
  EXPECT_NE(r.json[0].value("reason", "").find("directory.size_limit = 2"), std::string::npos)
      << r.json[0].dump(2);
}

}  // namespace
}  // namespace chainmail::integration
