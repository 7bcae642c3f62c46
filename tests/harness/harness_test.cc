// harness_test.cc: the harness against real programs: sh/cat, slapd + ldapsearch, postmap.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "harness/net.h"
#include "harness/postfix.h"
#include "harness/process.h"
#include "harness/slapd.h"
#include "harness/temp_dir.h"

namespace chainmail::harness {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(TempDir, RemovedOnDestruction) {
  std::filesystem::path kept;
  {
    TempDir dir("selftest");
    kept = dir.path();
    std::ofstream(dir.path() / "file") << "x";
    ASSERT_TRUE(std::filesystem::is_directory(kept));
  }
  if (std::getenv("CHAINMAIL_KEEP_TMP") == nullptr) {
    EXPECT_FALSE(std::filesystem::exists(kept));
  }
}

TEST(Run, CapturesExitCodeAndBothStreams) {
  const RunResult r = run({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.timed_out);
}

// Far more than a pipe buffer in all three directions at once: a sequential implementation would deadlock.
TEST(Run, LargeInputAndOutputDoNotDeadlock) {
  const std::string input(4 << 20, 'x');
  const RunResult r = run({"sh", "-c", "tee /dev/stderr"}, input, seconds(20));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.size(), input.size());
  EXPECT_EQ(r.err.size(), input.size());
}

TEST(Run, KillsAtTimeout) {
  const auto start = std::chrono::steady_clock::now();
  const RunResult r = run({"sleep", "30"}, {}, milliseconds(200));
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
}

TEST(Run, MissingProgramThrows) {
  EXPECT_THROW(run({"/nonexistent/chainmail-no-such-program"}), std::system_error);
}

TEST(Process, TerminateReapsAndReportsSignal) {
  TempDir dir("selftest");
  Process p({"sleep", "30"}, dir.path() / "sleep.log");
  EXPECT_TRUE(p.running());
  p.pause();
  EXPECT_TRUE(p.running());
  EXPECT_EQ(p.terminate(), 128 + 15);  // SIGTERM reaches it although it was stopped.
  EXPECT_FALSE(p.running());
}

class SlapdTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(demo_ldif())) GTEST_SKIP() << demo_ldif() << " missing";
    slapd_.start();
  }

  RunResult search(milliseconds timeout, const Env& env = {}) {
    return run({"ldapsearch", "-x", "-o", "nettimeout=1", "-l", "1", "-H", slapd_.uri(), "-D",
                std::string(demo::kBindDn), "-w", std::string(demo::kBindPassword), "-b",
                std::string(demo::kBase), "(uid=alice)", "mail"},
               {}, timeout, env);
  }

  Slapd slapd_;
};

TEST_F(SlapdTest, SearchPauseResumeRestart) {
  RunResult r = search(seconds(10));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("mail: alice@pydis.wtf"), std::string::npos) << r.out;

  slapd_.pause();
  // nettimeout covers connect() only, which the kernel completes for a stopped server, and -l is a
  // server-side limit: ldapsearch would wait forever for the bind reply. Both ways out of the hang:
  // 1. the client's own timeout for synchronous calls (ldap.conf TIMEOUT, here from the environment) ...
  const auto start = std::chrono::steady_clock::now();
  r = search(seconds(10), {{"LDAPTIMEOUT", "1"}});
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("Timed out"), std::string::npos) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  // 2. ... or run() killing it.
  r = search(milliseconds(1500));
  EXPECT_TRUE(r.timed_out);

  slapd_.resume();
  r = search(seconds(10));
  EXPECT_EQ(r.exit_code, 0) << r.err;

  const auto port = slapd_.port();
  slapd_.restart();
  EXPECT_EQ(slapd_.port(), port);
  r = search(seconds(10));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("mail: alice@pydis.wtf"), std::string::npos) << r.out;

  slapd_.stop();
  EXPECT_FALSE(slapd_.running());
  EXPECT_FALSE(wait_for_port(port, milliseconds(50)));
}

TEST_F(SlapdTest, BadLdifFailsLoudly) {
  TempDir dir("selftest");
  const auto ldif = dir.path() / "bad.ldif";
  std::ofstream(ldif) << "dn: dc=elsewhere,dc=example\nobjectClass: domain\ndc: elsewhere\n";
  try {
    slapd_.start(ldif);
    FAIL() << "start() accepted an entry outside the suffix";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("slapadd"), std::string::npos) << e.what();
  }
}

TEST(Postfix, PostmapQuery) {
  PostfixTools postfix;
  RunResult r =
      postfix.postmap_query("alice@example.org", "inline:{alice@example.org=alice, bob@example.org=bob}");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "alice\n");
  EXPECT_EQ(r.err, "");

  r = postfix.postmap_query("carol@example.org", "inline:{alice@example.org=alice}");
  EXPECT_EQ(r.exit_code, 1) << r.err;  // postmap -q: 1 is "not found".
  EXPECT_EQ(r.out, "");

  const auto table = postfix.write_file("aliases", "postmaster root\n");
  r = postfix.postmap_query("postmaster", "texthash:" + table.string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "root\n");
}

}  // namespace
}  // namespace chainmail::harness
