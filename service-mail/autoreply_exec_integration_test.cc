// autoreply_exec_integration_test.cc - chainmail-service-mail's autoreply and exec services run as Postfix's
// pipe(8) runs them: a separate process as the mail storage user (nobody here), the message on stdin,
// judged by the exit code and by what reached sendmail.
//
// sendmail is a fake: a shell script that records its argv and stdin in a folder, one pair of files per
// call. That shows what service-mail hands to Postfix (arguments, null sender, the reply's text) but not
// Postfix's own handling of it; the end-to-end path through a real Postfix is not covered here.
//
// Runs as root (it switches to nobody with setpriv).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "service-mail/test_support.h"

namespace chainmail {
namespace {

namespace fs = std::filesystem;
using namespace chainmail::testing;

constexpr std::string_view kMessage =
    "From: Joe <joe@example.org>\nTo: fortune@pydis.wtf\nSubject: Tell me one\n"
    "Message-ID: <q1@example.org>\nReferences: <q0@example.org>\n\nPlease.\n";

class AutoreplyExecBinary : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (switches to nobody)";
    dir_ = make_temp_dir();
    ASSERT_FALSE(dir_.empty());
    fs::permissions(dir_, fs::perms::all);
    for (const auto* sub : {"state", "sent", "exec"}) {
      fs::create_directory(dir_ / sub);
      fs::permissions(dir_ / sub, fs::perms::all);
    }
    spit(dir_ / "sendmail",
         "#!/bin/sh\n"
         "out=" +
             (dir_ / "sent").string() +
             "/$$\n"
             "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$out.args\"\n"
             "cat > \"$out.msg\"\n"
             "exit ${SENDMAIL_FAKE_EXIT:-0}\n");
    spit(dir_ / "sendmail-fails",
         "#!/bin/sh\ncat >/dev/null\necho 'postdrop: unable to connect' >&2\nexit 75\n");
    for (const auto* f : {"sendmail", "sendmail-fails"}) fs::permissions(dir_ / f, fs::perms::all);
    write_config("");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void write_config(const std::string& extra_autoreply, const std::string& extra_exec = "",
                    const std::string& extra_services = "") {
    const std::string d = dir_.string();
    spit(dir_ / "chainmail.conf",
         std::string("[directory]\nldif_file = \"/dev/null\"\n[services]\n\"fortune\" = \"autoreply\"\n") +
             extra_services + "\"router\" = \"exec:/bin/sh " + d +
             "/router.sh\"\n"
             "[service_mail]\nlog = \"stderr\"\n"
             "[autoreply]\nstate_dir = \"" +
             d + "/state\"\nsendmail = \"" + d + "/sendmail\"\nperiod_s = 3600\n" + extra_autoreply +
             "[exec]\ntimeout_s = 2\nmax_output_bytes = 1000\n" + extra_exec);
    fs::permissions(dir_ / "chainmail.conf", fs::perms::owner_read | fs::perms::owner_write |
                                                 fs::perms::group_read | fs::perms::others_read);
  }

  std::string command(const std::string& sender, const std::string& recipient, const std::string& tag) const {
    return "setpriv --reuid=nobody --regid=nogroup --clear-groups " +
           std::string(CHAINMAIL_SERVICE_MAIL_BIN) + " --config " + (dir_ / "chainmail.conf").string() +
           " --sender '" + sender + "' --recipient " + recipient + "@int.pydis.wtf --original-recipient " +
           recipient + "@pydis.wtf --queue-id 4ABC < " + (dir_ / "message").string() + " 2> " +
           (dir_ / ("stderr" + tag)).string();
  }

  int run(const std::string& message, const std::string& sender, const std::string& recipient = "fortune") {
    spit(dir_ / "message", message);
    const int status = std::system(command(sender, recipient, "").c_str());
    stderr_ = slurp(dir_ / "stderr");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::vector<fs::path> sent() const {
    std::vector<fs::path> out;
    for (const auto& p : files_in(dir_ / "sent")) {
      if (p.extension() == ".msg") out.push_back(p);
    }
    return out;
  }

  fs::path dir_;
  std::string stderr_;
};

TEST_F(AutoreplyExecBinary, RepliesOnceThreadedWithNullSender) {
  ASSERT_EQ(run(std::string(kMessage), "joe@example.org"), 0) << stderr_;
  const auto msgs = sent();
  ASSERT_EQ(msgs.size(), 1U) << stderr_;
  auto args_path = msgs.front();
  args_path.replace_extension(".args");
  EXPECT_EQ(slurp(args_path), "-i\n-f\n<>\n--\njoe@example.org\n");
  const auto reply = slurp(msgs.front());
  EXPECT_NE(reply.find("From: fortune@pydis.wtf\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("To: joe@example.org\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Subject: Re: Tell me one\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("In-Reply-To: <q1@example.org>\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("References: <q0@example.org>\n <q1@example.org>\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Auto-Submitted: auto-replied\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("\n\nThis address is an automated service"), std::string::npos) << reply;

  // Within the period: no second reply, and the message is still accepted.
  EXPECT_EQ(run(std::string(kMessage), "JOE@example.org"), 0) << stderr_;
  EXPECT_EQ(sent().size(), 1U);
  // Another sender is answered.
  EXPECT_EQ(run(std::string(kMessage), "ann@example.net"), 0) << stderr_;
  EXPECT_EQ(sent().size(), 2U);
}

TEST_F(AutoreplyExecBinary, NamedProfilesOverrideTheDefaultsAndLimitPerService) {
  write_config(
      "[autoreply.help]\nsubject = \"Help desk: %s\"\nbody = \"We answer within a day.\"\n"
      "sendmail_config = \"/etc/postfix-out\"\n",
      "", "\"help\" = \"autoreply:help\"\n");
  ASSERT_EQ(run(std::string(kMessage), "joe@example.org"), 0) << stderr_;
  ASSERT_EQ(run(std::string(kMessage), "joe@example.org", "help"), 0) << stderr_;
  auto msgs = sent();
  ASSERT_EQ(msgs.size(), 2U) << stderr_;  // an answer from fortune does not silence help
  std::string help_reply;
  std::string help_args;
  for (auto m : msgs) {
    const auto text = slurp(m);
    if (text.find("From: help@pydis.wtf\n") == std::string::npos) continue;
    help_reply = text;
    help_args = slurp(m.replace_extension(".args"));
  }
  EXPECT_NE(help_reply.find("Subject: Help desk: Tell me one\n"), std::string::npos) << help_reply;
  EXPECT_NE(help_reply.find("\n\nWe answer within a day."), std::string::npos) << help_reply;
  EXPECT_EQ(help_args, "-i\n-f\n<>\n-C\n/etc/postfix-out\n--\njoe@example.org\n");
  // The profile keeps [autoreply]'s period and state: a second message to help is not answered.
  EXPECT_EQ(run(std::string(kMessage), "joe@example.org", "help"), 0) << stderr_;
  EXPECT_EQ(sent().size(), 2U);
}

TEST_F(AutoreplyExecBinary, NeverRepliesTable) {
  struct Case {
    std::string_view name, sender, extra;
  };
  const Case cases[] = {
      {"null sender", "", ""},
      {"MAILER-DAEMON", "MAILER-DAEMON@example.org", ""},
      {"owner-", "owner-list@example.org", ""},
      {"-request", "list-request@example.org", ""},
      {"our own domain", "alice@pydis.wtf", ""},
      {"our internal domain", "dmarc@int.pydis.wtf", ""},
      {"List-Id", "joe1@example.org", "List-Id: <l.example.org>\n"},
      {"List-Unsubscribe", "joe2@example.org", "List-Unsubscribe: <mailto:u@example.org>\n"},
      {"Precedence bulk", "joe3@example.org", "Precedence: bulk\n"},
      {"Precedence junk", "joe4@example.org", "Precedence: junk\n"},
      {"Precedence list", "joe5@example.org", "Precedence: list\n"},
      {"Auto-Submitted auto-replied", "joe6@example.org", "Auto-Submitted: auto-replied\n"},
      {"Auto-Submitted auto-generated", "joe7@example.org", "Auto-Submitted: auto-generated\n"},
  };
  for (const auto& c : cases) {
    const std::string message = std::string(c.extra) + std::string(kMessage);
    EXPECT_EQ(run(message, std::string(c.sender)), 0) << c.name << ": " << stderr_;
    EXPECT_NE(stderr_.find("no reply"), std::string::npos) << c.name << ": " << stderr_;
    EXPECT_TRUE(sent().empty()) << c.name;
  }
}

TEST_F(AutoreplyExecBinary, ConcurrentDeliveriesFromOneSenderGetOneReply) {
  spit(dir_ / "message", kMessage);
  std::string script;
  for (int i = 0; i < 8; ++i) script += command("race@example.org", "fortune", std::to_string(i)) + " &\n";
  script += "wait\n";
  ASSERT_EQ(std::system(script.c_str()), 0);
  EXPECT_EQ(sent().size(), 1U);
}

TEST_F(AutoreplyExecBinary, HostileHeadersDoNotReachTheReply) {
  const std::string message =
      "From: x@example.org\nSubject: hi\r\nBcc: victim@example.com\n"
      "Message-ID: <a@b>\r\nTo: victim2@example.com\nSubject: \x01\x7f =?utf-8?q?x?=\n\nbody\n";
  ASSERT_EQ(run(message, "x@example.org"), 0) << stderr_;
  ASSERT_EQ(sent().size(), 1U);
  const auto reply = slurp(sent().front());
  const auto head = reply.substr(0, reply.find("\n\n"));
  EXPECT_EQ(head.find("victim"), std::string::npos) << reply;
  EXPECT_EQ(head.find('\r'), std::string::npos) << reply;
}

TEST_F(AutoreplyExecBinary, ReplyFromACommandWithItsLimits) {
  write_config("command = [\"/bin/echo\", \"A fortune: you will write tests.\"]\n");
  ASSERT_EQ(run(std::string(kMessage), "joe@example.org"), 0) << stderr_;
  ASSERT_EQ(sent().size(), 1U);
  EXPECT_TRUE(slurp(sent().front()).ends_with("\n\nA fortune: you will write tests.\n"));

  // A command that outlives its timeout: no reply, 75, and the slot is given back.
  write_config("command = [\"/bin/sleep\", \"30\"]\ncommand_timeout_s = 1\n");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(run(std::string(kMessage), "slow@example.org"), 75) << stderr_;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(sent().size(), 1U);
  // Output over the cap is cut, not an error.
  write_config("command = [\"/usr/bin/head\", \"-c\", \"100000\", \"/dev/zero\"]\nmax_output_bytes = 100\n");
  EXPECT_EQ(run(std::string(kMessage), "slow@example.org"), 0) << stderr_;
  EXPECT_EQ(sent().size(), 2U);
}

TEST_F(AutoreplyExecBinary, SendmailFailureDefersAndRetries) {
  const auto recorder = slurp(dir_ / "sendmail");
  fs::copy_file(dir_ / "sendmail-fails", dir_ / "sendmail", fs::copy_options::overwrite_existing);
  EXPECT_EQ(run(std::string(kMessage), "joe@example.org"), 75) << stderr_;
  EXPECT_NE(stderr_.find("postdrop"), std::string::npos) << stderr_;
  spit(dir_ / "sendmail", recorder);
  EXPECT_EQ(run(std::string(kMessage), "joe@example.org"), 0) << stderr_;
  EXPECT_EQ(sent().size(), 1U) << "the failed attempt must not use up the sender's reply";
}

TEST_F(AutoreplyExecBinary, ExecExitMapping) {
  struct Case {
    std::string_view name, script;
    int want;
  };
  const Case cases[] = {
      {"success", "cat > /dev/null; exit 0", 0},
      {"tempfail", "exit 75", 75},
      {"sysexits pass through", "exit 67", 67},
      {"other exit, default failure_exit", "exit 1", 75},
      {"killed by a signal", "kill -9 $$", 75},
      {"timeout", "sleep 30", 75},
      {"timeout, grandchild holds the pipe", "sleep 30 & exit 0", 75},
      {"output over the cap", "head -c 100000 /dev/zero", 75},
      {"stdin not read", "exit 0", 0},
  };
  std::string big(std::string(kMessage) + std::string(std::size_t{1024} * 1024, 'x') + "\n");
  for (const auto& c : cases) {
    spit(dir_ / "router.sh", c.script);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(run(big, "joe@example.org", "router"), c.want) << c.name << ": " << stderr_;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10)) << c.name;
  }
  write_config("", "failure_exit = 69\n");
  spit(dir_ / "router.sh", "exit 1");
  EXPECT_EQ(run(big, "joe@example.org", "router"), 69) << stderr_;
}

TEST_F(AutoreplyExecBinary, ExecGetsTheMessageAndACleanEnvironment) {
  const auto out = dir_ / "exec";
  spit(dir_ / "router.sh", "cat > " + (out / "stdin").string() + "; env > " + (out / "env").string() + "\n");
  const std::string cmd = "CHAINMAIL_LEAK=1 HOME=/root " + command("joe@example.org", "router", "");
  spit(dir_ / "message", kMessage);
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(dir_ / "stderr");
  EXPECT_EQ(slurp(out / "stdin"), kMessage);
  const auto env = slurp(out / "env");
  EXPECT_NE(env.find("PATH=/usr/bin:/bin\n"), std::string::npos) << env;
  EXPECT_NE(env.find("SENDER=joe@example.org\n"), std::string::npos) << env;
  EXPECT_NE(env.find("RECIPIENT=router@int.pydis.wtf\n"), std::string::npos) << env;
  EXPECT_NE(env.find("ORIGINAL_RECIPIENT=router@pydis.wtf\n"), std::string::npos) << env;
  EXPECT_NE(env.find("QUEUE_ID=4ABC\n"), std::string::npos) << env;
  EXPECT_EQ(env.find("CHAINMAIL_LEAK"), std::string::npos) << env;
  EXPECT_EQ(env.find("HOME="), std::string::npos) << env;
}

}  // namespace
}  // namespace chainmail
