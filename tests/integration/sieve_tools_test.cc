// sieve_tools_test.cc: vnd.chainmail in Pigeonhole's own tools. sieve-test runs scripts with
// lib90_sieve_chainmail_plugin.so from the build tree against messages and envelopes; sievec must report
// misuse at compile time with the line. The directory is conf/ldap/demo.ldif (no slapd); a configuration
// whose LDAP server is down, and one that does not exist, show that trouble is an error, never "false".
//
// Each message or envelope is tested with one script holding every condition of its table (condition i
// files into "c<i>"), so a table costs one sieve-test run.
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "harness/dovecot_lmtp.h"
#include "harness/files.h"
#include "harness/net.h"
#include "harness/process.h"
#include "harness/temp_dir.h"
#include "sieve_support.h"

namespace chainmail::integration {
namespace {

struct SieveRun {
  harness::RunResult run;
  std::vector<std::string> folders;  // fileinto actions performed
  bool implicit_keep = false;
};

struct Condition {
  std::string test;  // a Sieve test using vnd.chainmail
  bool want;
};

constexpr const char* kRequire =
    "require [\"vnd.chainmail\", \"fileinto\", \"relational\", \"comparator-i;ascii-numeric\"];\n";

// Our field sits between another authserv-id's (above) and a forgery of ours (below): only ours counts.
constexpr const char* kStamped =
    "Authentication-Results: mx.elsewhere.example; spf=fail smtp.mailfrom=x@example.net; dkim=fail;\n"
    "\tdmarc=pass header.from=example.net\n"
    "Authentication-Results: mx.pydis.wtf;\n"
    "\tspf=pass smtp.mailfrom=sender@example.net;\n"
    "\tdkim=fail header.d=example.net;\n"
    "\tdkim=pass header.d=mail.example.net;\n"
    "\tdmarc=fail (p=reject) header.from=example.net\n"
    "Authentication-Results: mx.pydis.wtf; spf=fail smtp.mailfrom=x@example.net; dkim=neutral;\n"
    "\tdmarc=pass header.from=example.net\n";

class SieveTools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<harness::TempDir>("sieve");
    // sieve-test drops to the mail user (it refuses root): that user reads the scripts and writes the
    // compiled binaries beside them.
    const passwd* pw = ::getpwnam("mail");
    ASSERT_NE(pw, nullptr);
    ASSERT_EQ(::chown(dir_->path().c_str(), pw->pw_uid, pw->pw_gid), 0);
    const auto& d = dir_->path();
    harness::write_file(d / "chainmail.conf", sieve_chainmail_conf());
    harness::write_file(d / "down.conf",
                        sieve_chainmail_conf("ldap://127.0.0.1:" + std::to_string(harness::free_port())));
    write_dovecot_conf(d / "dovecot.conf", d / "chainmail.conf");
    write_dovecot_conf(d / "dovecot-down.conf", d / "down.conf");
    write_dovecot_conf(d / "dovecot-missing.conf", d / "no-such.conf");
  }

  static void TearDownTestSuite() { dir_.reset(); }

  static void write_dovecot_conf(const std::filesystem::path& file, const std::filesystem::path& chainmail) {
    const std::string d = dir_->path().string();
    harness::write_file(file,
                        "base_dir = " + d + "/run\n" + "log_path = /dev/stderr\n" +
                            "mail_uid = mail\nmail_gid = mail\n"
                            "first_valid_uid = 1\nfirst_valid_gid = 1\n"
                            "mail_location = maildir:" +
                            d + "/Maildir\n" +
                            "import_environment = $import_environment LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS\n"
                            "plugin {\n  sieve_plugin_dir = " CHAINMAIL_SIEVE_PLUGIN_DIR
                            "\n"
                            "  sieve_plugins = sieve_chainmail\n"
                            "  sieve_extensions = +vnd.chainmail\n"
                            "  chainmail_config = " +
                            chainmail.string() + "\n}\n");
  }

  static std::filesystem::path write_script(const std::string& text) {
    auto file = dir_->path() / ("s" + std::to_string(++scripts_) + ".sieve");
    harness::write_file(file, text);
    return file;
  }

  // sieve-test CONF [-a ORCPT] -r RCPT SCRIPT MESSAGE, with the performed actions parsed.
  static SieveRun sieve_test(const std::string& script, const std::string& message, const std::string& orcpt,
                             const std::string& rcpt = "alice@localhost",
                             const std::string& conf = "dovecot.conf") {
    const auto script_file = write_script(script);
    const auto message_file = dir_->path() / "message.eml";
    harness::write_file(message_file, message);
    std::vector<std::string> argv = {"sieve-test", "-c", (dir_->path() / conf).string()};
    if (!orcpt.empty()) argv.insert(argv.end(), {"-a", orcpt});
    argv.insert(argv.end(), {"-r", rcpt, script_file.string(), message_file.string()});
    SieveRun out;
    out.run = harness::run(argv, {}, std::chrono::seconds(30), harness::sanitizer_env());
    const std::string& text = out.run.out;
    const auto keep_at = text.find("Implicit keep:");
    const std::string performed = text.substr(0, keep_at);
    const std::string marker = "store message in folder: ";
    for (auto pos = performed.find(marker); pos != std::string::npos; pos = performed.find(marker, pos)) {
      pos += marker.size();
      out.folders.push_back(performed.substr(pos, performed.find('\n', pos) - pos));
    }
    out.implicit_keep = keep_at != std::string::npos && text.find(marker, keep_at) != std::string::npos;
    return out;
  }

  // Runs every condition in one script against one message and envelope and checks each.
  static void check(const std::string& label, const std::vector<Condition>& conditions,
                    const std::string& message, const std::string& orcpt,
                    const std::string& rcpt = "alice@localhost") {
    std::string script = kRequire;
    for (std::size_t i = 0; i < conditions.size(); ++i) {
      script += "if " + conditions[i].test + " { fileinto \"c" + std::to_string(i) + "\"; }\n";
    }
    const SieveRun r = sieve_test(script, message, orcpt, rcpt);
    ASSERT_EQ(r.run.exit_code, 0) << label << "\n" << r.run.out << r.run.err;
    EXPECT_EQ(r.run.err.find("ERROR: AddressSanitizer"), std::string::npos) << r.run.err;
    for (std::size_t i = 0; i < conditions.size(); ++i) {
      const bool matched =
          std::find(r.folders.begin(), r.folders.end(), "c" + std::to_string(i)) != r.folders.end();
      EXPECT_EQ(matched, conditions[i].want)
          << label << ": " << conditions[i].test << " (ORCPT " << orcpt << ", RCPT " << rcpt << ")";
    }
  }

  static std::unique_ptr<harness::TempDir> dir_;
  static int scripts_;
};

std::unique_ptr<harness::TempDir> SieveTools::dir_;
int SieveTools::scripts_ = 0;

TEST_F(SieveTools, AuthresReadsOnlyTheTopmostFieldOfOurs) {
  check("",
        {
            {"authres :spf \"pass\"", true},
            {"authres :spf \"fail\"", false},  // the forgery below ours and the other authserv-id say fail
            {"authres :dkim \"fail\"", true},
            {"authres :dkim \"pass\"", true},  // two signatures: either result matches
            {"authres :dkim \"neutral\"", false},
            {"authres :dmarc \"fail\"", true},
            {"authres :dmarc \"pass\"", false},
            {"authres \"fail\"", true},  // no tag: DMARC
            {"authres \"pass\"", false},
            {"authres :dmarc [\"none\", \"fail\"]", true},
            {"authres :spf :is \"PASS\"", true},  // i;ascii-casemap by default
            {"authres :spf :comparator \"i;octet\" \"PASS\"", false},
            {"authres :spf :comparator \"i;octet\" \"pass\"", true},
            {"authres :spf :matches \"p*s\"", true},
            {"authres :spf :matches \"f*\"", false},
            {"authres :spf :contains \"as\"", true},
            {"authres :dkim :count \"eq\" :comparator \"i;ascii-numeric\" \"2\"", true},
            {"authres :dmarc :count \"eq\" :comparator \"i;ascii-numeric\" \"1\"", true},
            {"authres :spf :value \"gt\" \"o\"", true},
            {"not authres :spf \"pass\"", false},
        },
        sieve_message("stamped", kStamped), "alice@pydis.wtf");
}

TEST_F(SieveTools, AuthresWithoutAFieldOfOursMatchesNothing) {
  const std::vector<Condition> none = {
      {"authres :spf \"pass\"", false},
      {"authres :spf \"fail\"", false},
      {"authres :dkim \"fail\"", false},
      {"authres \"pass\"", false},
      {"authres :spf :matches \"*\"", false},
      {"authres :dmarc :count \"eq\" :comparator \"i;ascii-numeric\" \"0\"", true},
  };
  check("another authserv-id only", none,
        sieve_message("other",
                      "Authentication-Results: mx.elsewhere.example; spf=pass; dkim=pass; dmarc=pass\n"
                      "Authentication-Results: mx.pydis.wtf.elsewhere.example; dmarc=pass\n"),
        "alice@pydis.wtf");
  check("no Authentication-Results at all", none, sieve_message("bare", ""), "alice@pydis.wtf");
  check("ours does not parse: the forgery below it does not stand in", none,
        sieve_message("broken",
                      "Authentication-Results: mx.pydis.wtf; spf\n"
                      "Authentication-Results: mx.pydis.wtf; spf=pass; dkim=pass; dmarc=pass\n"),
        "alice@pydis.wtf");
}

TEST_F(SieveTools, RouteFollowsTheOrcptToThisMailbox) {
  const std::string msg = sieve_message("route", "");
  check("group devops -> alice",
        {
            {"route :group \"devops\"", true},
            {"route \"devops\"", true},
            {"route :alias \"devops\"", false},
            {"route :group \"admins\"", false},
            {"route :group \"DevOps\"", true},
            {"route :group :comparator \"i;octet\" \"DevOps\"", false},
            {"route :group :matches \"dev*\"", true},
            {"route :group :count \"eq\" :comparator \"i;ascii-numeric\" \"1\"", true},
        },
        msg, "devops@pydis.wtf");
  check("alias postmaster -> group devops -> nested group admins -> bob",
        {
            {"route :alias \"postmaster\"", true},
            {"route :group \"postmaster\"", false},
            {"route :group \"devops\"", true},
            {"route :group \"admins\"", true},
            {"route [\"nobody\", \"postmaster\"]", true},
            {"route :count \"eq\" :comparator \"i;ascii-numeric\" \"3\"", true},
        },
        msg, "postmaster@pydis.com", "bob@localhost");
  check("detail on both sides", {{"route :group \"devops\"", true}}, msg, "devops+ops@pydis.wtf",
        "alice+box@localhost");
  check("direct mail", {{"route :group \"devops\"", false}, {"route :matches \"*\"", false}}, msg,
        "alice@pydis.wtf");
  check("the ORCPT does not reach this mailbox",
        {{"route \"devops\"", false}, {"route :matches \"*\"", false}}, msg, "devops@pydis.wtf",
        "dave@localhost");
  check("no ORCPT", {{"route \"devops\"", false}, {"route :matches \"*\"", false}}, msg, "");
}

TEST_F(SieveTools, RouteIgnoresMessageHeaders) {
  // Headers naming a group or alias change nothing: only the envelope counts.
  check("headers", {{"route \"devops\"", false}},
        sieve_message("headers",
                      "Delivered-To: devops@pydis.wtf\nX-Original-To: devops@pydis.wtf\n"
                      "X-Chainmail-Route: devops@pydis.wtf -> group devops -> alice\n"),
        "alice@pydis.wtf");
}

TEST_F(SieveTools, DirectoryTroubleIsARuntimeErrorNotFalse) {
  const std::string script = std::string(kRequire) + "if route :group \"devops\" { fileinto \"DevOps\"; }\n";
  const SieveRun r = sieve_test(script, sieve_message("down", kStamped), "devops@pydis.wtf",
                                "alice@localhost", "dovecot-down.conf");
  EXPECT_NE(r.run.exit_code, 0) << r.run.out << r.run.err;
  EXPECT_NE(r.run.err.find("route test: chainmail: directory trouble routing ORCPT devops@pydis.wtf"),
            std::string::npos)
      << r.run.err;
  EXPECT_NE(r.run.err.find("temporary failure"), std::string::npos) << r.run.err;
  EXPECT_TRUE(r.folders.empty());

  // authres needs only the configuration: the same setup answers it.
  const SieveRun a = sieve_test(std::string(kRequire) + "if authres \"fail\" { fileinto \"Junk\"; }\n",
                                sieve_message("down-authres", kStamped), "devops@pydis.wtf",
                                "alice@localhost", "dovecot-down.conf");
  EXPECT_EQ(a.run.exit_code, 0) << a.run.err;
  EXPECT_EQ(a.folders, std::vector<std::string>{"Junk"});
}

TEST_F(SieveTools, MissingConfigurationIsARuntimeError) {
  for (const std::string test : {"authres \"fail\"", "route \"devops\""}) {
    const SieveRun r = sieve_test(std::string(kRequire) + "if " + test + " { fileinto \"X\"; }\n",
                                  sieve_message("missing", kStamped), "devops@pydis.wtf", "alice@localhost",
                                  "dovecot-missing.conf");
    EXPECT_NE(r.run.exit_code, 0) << test << r.run.out;
    EXPECT_NE(r.run.err.find("chainmail: cannot load"), std::string::npos) << test << r.run.err;
    EXPECT_TRUE(r.folders.empty()) << test;
  }
}

TEST_F(SieveTools, SievecReportsMisuseWithTheLine) {
  struct Case {
    std::string body;  // after the require line (line 1)
    std::string want;  // in sievec's error output
  };
  const Case cases[] = {
      {"\nif authres :foo \"pass\" { keep; }\n",
       "line 3: error: unknown tagged argument ':foo' for the authres test"},
      {"if route :group 42 { keep; }\n",
       "line 2: error: the route test expects a string list as argument 1 (key list), but a number was "
       "found"},
      {"if authres :spf :dkim \"pass\" { keep; }\n",
       "line 2: error: the authres test takes only one of :spf, :dkim and :dmarc"},
      {"if true { keep; }\nif route :group :alias \"x\" { keep; }\n",
       "line 3: error: the route test takes only one of :group and :alias"},
      {"if route :dkim \"x\" { keep; }\n",
       "line 2: error: unknown tagged argument ':dkim' for the route test"},
      {"if authres :group \"x\" { keep; }\n",
       "line 2: error: unknown tagged argument ':group' for the authres test"},
      {"if authres { keep; }\n",
       "line 2: error: the authres test requires 1 positional argument(s), but 0 is/are specified"},
      {"if authres :spf \"a\" \"b\" { keep; }\n",
       "line 2: error: the authres test requires 1 positional argument(s), but 2"},
  };
  for (const Case& c : cases) {
    const auto script = write_script(std::string(kRequire) + c.body);
    const auto out = dir_->path() / "out.svbin";
    const harness::RunResult r = harness::run(
        {"sievec", "-c", (dir_->path() / "dovecot.conf").string(), script.string(), out.string()}, {},
        std::chrono::seconds(30), harness::sanitizer_env());
    EXPECT_NE(r.exit_code, 0) << c.body;
    EXPECT_NE((r.out + r.err).find(c.want), std::string::npos) << c.body << "\n" << r.out << r.err;
  }
  // Without the extension required, the tests do not exist.
  const auto plain = write_script("if route \"devops\" { keep; }\n");
  const harness::RunResult r = harness::run({"sievec", "-c", (dir_->path() / "dovecot.conf").string(),
                                             plain.string(), (dir_->path() / "out.svbin").string()},
                                            {}, std::chrono::seconds(30), harness::sanitizer_env());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("line 1: error: unknown test 'route'"), std::string::npos) << r.out << r.err;

  // And a correct script compiles.
  const auto good =
      write_script(std::string(kRequire) +
                   "if anyof(authres :dkim :count \"ge\" :comparator \"i;ascii-numeric\" \"1\",\n"
                   "         route :alias :matches \"post*\") { keep; }\n");
  const harness::RunResult g = harness::run({"sievec", "-c", (dir_->path() / "dovecot.conf").string(),
                                             good.string(), (dir_->path() / "good.svbin").string()},
                                            {}, std::chrono::seconds(30), harness::sanitizer_env());
  EXPECT_EQ(g.exit_code, 0) << g.out << g.err;
}

}  // namespace
}  // namespace chainmail::integration
