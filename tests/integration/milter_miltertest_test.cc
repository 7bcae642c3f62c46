// milter_miltertest_test.cc: protocol-level cases for chainmail-milter, written as miltertest Lua scripts
// (tests/miltertest/*.lua, the tool OpenDKIM's own tests use). miltertest plays Postfix's side of the milter
// protocol step by step and shows what the milter answers at each step and which edits it asks for at end of
// message (SMFIR_DELRCPT/ADDRCPT, header insertion and deletion, quarantine, reply codes), which the
// end-to-end suites only see through their effect.
//
// The suite starts slapd (demo.ldif), unbound (the test zones) and the milter with the same configuration as
// the other milter suites (milter_support.h), without Postfix or Dovecot, and runs each script with
//   miltertest -s SCRIPT -D sock=inet:PORT@127.0.0.1 -D lib=tests/miltertest/common.lua
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "harness/paths.h"
#include "harness/process.h"
#include "milter_support.h"

namespace chainmail::integration {
namespace {

std::filesystem::path script_dir() {
  return harness::source_dir() / "tests" / "miltertest";
}

class MilterProtocol : public MailStackSuite<MilterProtocol> {
 public:
  static void SetUpTestSuite() { start_stack({.milter = true, .mta = false}); }

 protected:
  void SetUp() override {
    MailStackSuite::SetUp();
    if (HasFatalFailure()) return;
    if (!stack().slapd.running()) stack().slapd.restart();
  }

  // Runs one script; the failure message carries miltertest's output and the milter's log.
  static void run_script(const std::string& name) {
    const harness::RunResult r = harness::run(
        {"miltertest", "-s", (script_dir() / name).string(), "-D",
         "sock=" + stack().milter.libmilter_socket(), "-D", "lib=" + (script_dir() / "common.lua").string()},
        {}, std::chrono::seconds(60));
    EXPECT_EQ(r.exit_code, 0) << "miltertest -s " << name << "\n"
                              << r.out << r.err << "\n--- milter log\n"
                              << stack().milter.log();
  }
};

// The additions are not visible to miltertest (routing.lua): the milter's log line for the script's message
// names each recipient's targets.
TEST_F(MilterProtocol, Routing) {
  run_script("routing.lua");
  const std::string log = stack().milter.log();
  const std::size_t line_start = log.find("chainmail-milter: MTROUTE1: client=");
  ASSERT_NE(line_start, std::string::npos) << log;
  const std::string line = log.substr(line_start, log.find('\n', line_start) - line_start);
  for (const char* target : {"rcpt=<devops@pydis.wtf>->", "mailbox:alice@localhost", "mailbox:bob@localhost",
                             "forward:joe@jb3.dev", "forward:carol@example.net",
                             "rcpt=<Dave@pydis.com>->mailbox:dave@localhost"}) {
    EXPECT_NE(line.find(target), std::string::npos) << target << " missing in: " << line;
  }
}

TEST_F(MilterProtocol, AuthenticationResults) {
  run_script("authres.lua");
}

TEST_F(MilterProtocol, DmarcAndSpfPolicy) {
  run_script("dmarc.lua");
}

TEST_F(MilterProtocol, Signing) {
  run_script("signing.lua");
}

TEST_F(MilterProtocol, DirectoryDown) {
  stack().slapd.stop();
  run_script("directory_down.lua");
  stack().slapd.restart();
}

// The scripts must be able to fail: the same routing script against a milter whose directory is down fails.
TEST_F(MilterProtocol, ScriptsCanFail) {
  stack().slapd.stop();
  const harness::RunResult r = harness::run(
      {"miltertest", "-s", (script_dir() / "routing.lua").string(), "-D",
       "sock=" + stack().milter.libmilter_socket(), "-D", "lib=" + (script_dir() / "common.lua").string()},
      {}, std::chrono::seconds(60));
  stack().slapd.restart();
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("milter replied"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace chainmail::integration
