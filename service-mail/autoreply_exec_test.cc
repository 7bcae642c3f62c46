// autoreply_exec_test.cc - the pieces of the autoreply and exec services in-process: run_command (timeout,
// process-group kill, output cap, clean environment, stdin without SIGPIPE), the exit-code mapping, and the
// per-sender reply state under concurrency (processes and threads).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "service-mail/reply_state.h"
#include "service-mail/service_mail.h"
#include "service-mail/subprocess.h"
#include "service-mail/test_support.h"

namespace chainmail {
namespace {

namespace fs = std::filesystem;
using namespace chainmail::testing;
using Clock = std::chrono::steady_clock;

CommandSpec shell(const std::string& script, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  CommandSpec s;
  s.argv = {"/bin/sh", "-c", script};
  s.env = {"PATH=/usr/bin:/bin"};
  s.timeout = timeout;
  return s;
}

TEST(RunCommand, ExitStatusAndOutput) {
  const auto r = run_command(shell("echo out; echo err >&2; exit 3"));
  EXPECT_EQ(r.end, CommandResult::End::Exited);
  EXPECT_EQ(r.status, 3);
  EXPECT_EQ(r.output, "out\nerr\n");
}

TEST(RunCommand, MessageOnStdin) {
  auto s = shell("cat");
  const std::string big(std::size_t{1024} * 1024, 'm');  // larger than a pipe buffer
  s.input = big;
  s.max_output = big.size();
  const auto r = run_command(s);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.output, big);
}

TEST(RunCommand, CommandThatDoesNotReadStdinIsNoSigpipe) {
  auto s = shell("exit 0");
  const std::string big(std::size_t{4} * 1024 * 1024, 'm');
  s.input = big;
  const auto r = run_command(s);  // a SIGPIPE would kill this test process
  EXPECT_TRUE(r.ok()) << r.describe();
}

TEST(RunCommand, TimeoutKillsTheWholeProcessGroup) {
  const fs::path dir = make_temp_dir();
  const auto marker = dir / "grandchild-ran";
  const auto start = Clock::now();
  // The grandchild keeps the output pipe open; only killing the group ends it.
  const auto r = run_command(
      shell("(sleep 2; touch " + marker.string() + ") & sleep 30", std::chrono::milliseconds(300)));
  const auto took = Clock::now() - start;
  EXPECT_EQ(r.end, CommandResult::End::TimedOut);
  EXPECT_LT(took, std::chrono::seconds(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_FALSE(fs::exists(marker)) << "the grandchild survived the timeout";
  int status = 0;
  EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1) << "a child was left unreaped";
  fs::remove_all(dir);
}

TEST(RunCommand, LeaderExitsButBackgroundChildHoldsThePipe) {
  const auto start = Clock::now();
  const auto r = run_command(shell("sleep 30 & exit 0", std::chrono::milliseconds(500)));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(r.end, CommandResult::End::TimedOut);
}

TEST(RunCommand, OutputCap) {
  auto s = shell("head -c 1000000 /dev/zero");
  s.max_output = 1000;
  const auto killed = run_command(s);
  EXPECT_EQ(killed.end, CommandResult::End::OutputOverflow);
  EXPECT_EQ(killed.output.size(), 1000U);
  s.overflow_kills = false;
  const auto cut = run_command(s);
  EXPECT_TRUE(cut.ok()) << cut.describe();
  EXPECT_EQ(cut.output.size(), 1000U);
}

TEST(RunCommand, NotStarted) {
  CommandSpec s;
  s.argv = {"/nonexistent/command"};
  const auto r = run_command(s);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.end, CommandResult::End::Exited) << r.describe();
}

TEST(Exec, ExitCodeMapping) {
  struct Case {
    CommandResult::End end;
    int status;
    int failure_exit;
    int want;
  };
  const Case cases[] = {
      {CommandResult::End::Exited, 0, 75, 0},           {CommandResult::End::Exited, 75, 69, 75},
      {CommandResult::End::Exited, 67, 75, 67},         {CommandResult::End::Exited, 1, 75, 75},
      {CommandResult::End::Exited, 1, 69, 69},          {CommandResult::End::Exited, 255, 69, 69},
      {CommandResult::End::TimedOut, -1, 69, 75},       {CommandResult::End::Signaled, 9, 69, 75},
      {CommandResult::End::OutputOverflow, -1, 69, 75}, {CommandResult::End::NotStarted, -1, 69, 75},
  };
  for (const auto& c : cases) {
    CommandResult r;
    r.end = c.end;
    r.status = c.status;
    EXPECT_EQ(exec_exit_code(r, c.failure_exit), c.want)
        << r.describe() << " failure_exit " << c.failure_exit;
  }
}

TEST(Exec, CleanEnvironmentAndMessageOnStdin) {
  const fs::path dir = make_temp_dir();
  Config config = default_config();
  // sh itself adds PWD (and dash may add more shell variables); those are dropped below.
  config.exec.command = {"/bin/sh", "-c",
                         "/usr/bin/env > " + (dir / "env").string() + "; cat > " + (dir / "stdin").string()};
  const Envelope env{"joe@example.org", "router@int.pydis.wtf", "router@pydis.wtf", "4ABC"};
  ::setenv("CHAINMAIL_SECRET_TEST", "leak", 1);
  const auto out = run_exec(config, parse_service_spec("exec"), env, "Subject: r\n\nreport\n");
  ::unsetenv("CHAINMAIL_SECRET_TEST");
  EXPECT_EQ(out.exit_code, 0) << out.detail;
  EXPECT_EQ(slurp(dir / "stdin"), "Subject: r\n\nreport\n");
  std::set<std::string> vars;
  std::istringstream lines(slurp(dir / "env"));
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("PWD=") && !line.starts_with("SHLVL=") && !line.starts_with("_="))
      vars.insert(line);
  }
  const std::set<std::string> want = {"PATH=/usr/bin:/bin", "SENDER=joe@example.org",
                                      "RECIPIENT=router@int.pydis.wtf", "ORIGINAL_RECIPIENT=router@pydis.wtf",
                                      "QUEUE_ID=4ABC"};
  EXPECT_EQ(vars, want);
  fs::remove_all(dir);
}

TEST(ReplyState, OncePerPeriodAndBounded) {
  const fs::path dir = make_temp_dir();
  const std::string key_a(32, 'a');
  const std::string key_b(32, 'b');
  const std::string key_c(32, 'c');
  EXPECT_EQ(claim_reply_slot(dir, key_a, 100, 2, 1000).slot, ReplySlot::Granted);
  EXPECT_EQ(claim_reply_slot(dir, key_a, 100, 2, 1050).slot, ReplySlot::Limited);
  EXPECT_EQ(claim_reply_slot(dir, key_a, 100, 2, 1101).slot, ReplySlot::Granted);
  EXPECT_EQ(claim_reply_slot(dir, key_b, 100, 2, 1102).slot, ReplySlot::Granted);
  EXPECT_EQ(claim_reply_slot(dir, key_c, 100, 2, 1103).slot, ReplySlot::Full);
  // Once a's entry expires it is pruned and c gets its place.
  EXPECT_EQ(claim_reply_slot(dir, key_c, 100, 2, 1202).slot, ReplySlot::Granted);
  EXPECT_FALSE(fs::exists(dir / key_a));
  release_reply_slot(dir, key_c);
  EXPECT_EQ(claim_reply_slot(dir, key_c, 100, 2, 1203).slot, ReplySlot::Granted);
  EXPECT_EQ(claim_reply_slot(dir / "missing", key_a, 100, 2, 1203).slot, ReplySlot::Trouble);
  fs::remove_all(dir);
}

TEST(ReplyState, ExactlyOneOfManyProcessesAndThreadsIsGranted) {
  const fs::path dir = make_temp_dir();
  const std::string key(32, 'd');
  const std::time_t now = std::time(nullptr);
  constexpr int kProcesses = 8;
  constexpr int kThreads = 8;
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Each process races with threads of its own; its exit status is how many it was granted.
      std::atomic<int> granted{0};
      std::vector<std::thread> threads;
      threads.reserve(kThreads);
      for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
          if (claim_reply_slot(dir, key, 3600, 1000, now).slot == ReplySlot::Granted) ++granted;
        });
      }
      for (auto& t : threads) t.join();
      ::_exit(granted.load());
    }
    pids.push_back(pid);
  }
  int total = 0;
  for (const pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    total += WEXITSTATUS(status);
  }
  EXPECT_EQ(total, 1);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace chainmail
