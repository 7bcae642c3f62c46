// service_mail_integration_test.cc - chainmail-service-mail run as Postfix's pipe(8) runs it: a separate
// process with the message on stdin, as the mail storage user (nobody here), judged by its exit code and the
// Maildir.
//
// Runs as root (it switches users with setpriv and mounts a tmpfs inside its own mount namespace). Each test
// is its own process (gtest_discover_tests), so the namespace and the children's peak memory are per test.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "service-mail/test_support.h"

namespace chainmail {
namespace {

namespace fs = std::filesystem;
using namespace chainmail::testing;

fs::path samples_dir() {
  return CHAINMAIL_DMARC_SAMPLES;
}

class ServiceMailBinary : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (switches to nobody, mounts a tmpfs)";
    dir_ = make_temp_dir();
    ASSERT_FALSE(dir_.empty());
    fs::permissions(dir_, fs::perms::all);  // nobody must reach the Maildir and read the config
    maildir_ = dir_ / "Maildir";
    write_config(maildir_);
  }
  void TearDown() override {
    if (!dir_.empty()) {
      ::umount2((dir_ / "full").c_str(), MNT_DETACH);
      fs::remove_all(dir_);
    }
  }

  void write_config(const fs::path& maildir) {
    spit(dir_ / "chainmail.conf",
         "[directory]\nldif_file = \"/dev/null\"\n[services]\n\"dmarc\" = \"dmarc-reports:" +
             maildir.string() + "\"\n[service_mail]\nlog = \"stderr\"\n");
    fs::permissions(dir_ / "chainmail.conf", fs::perms::owner_read | fs::perms::owner_write |
                                                 fs::perms::group_read | fs::perms::others_read);
  }

  // Runs the binary with `message` on stdin; as_user: "" = as we are (root), else setpriv to that user.
  int run(const std::string& message, const std::string& as_user, const std::string& recipient = "dmarc@x") {
    spit(dir_ / "message", message);
    std::string cmd;
    if (!as_user.empty()) cmd = "setpriv --reuid=" + as_user + " --regid=nogroup --clear-groups ";
    cmd += std::string(CHAINMAIL_SERVICE_MAIL_BIN) + " --config " + (dir_ / "chainmail.conf").string() +
           " --sender r@reporter.example --recipient " + recipient +
           " --original-recipient dmarc@pydis.wtf --queue-id 4ABC < " + (dir_ / "message").string() + " 2> " +
           (dir_ / "stderr").string();
    const int status = std::system(cmd.c_str());
    stderr_ = slurp(dir_ / "stderr");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::size_t filed(const std::string& folder) const {
    const fs::path f = folder == "INBOX" ? maildir_ : maildir_ / ("." + folder);
    return files_in(f / "new").size();
  }

  fs::path dir_;
  fs::path maildir_;
  std::string stderr_;
};

std::string sample_message() {
  const std::string name = "fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz";
  return report_message(name, "application/gzip", slurp(samples_dir() / "aggregate" / name));
}

TEST_F(ServiceMailBinary, AsTheMailUserFilesAReport) {
  EXPECT_EQ(run(sample_message(), "nobody"), 0) << stderr_;
  EXPECT_EQ(filed("Reports.New"), 1U);
  EXPECT_NE(stderr_.find("4ABC: from=<r@reporter.example>"), std::string::npos) << stderr_;
  EXPECT_NE(stderr_.find("status=sent"), std::string::npos) << stderr_;
  EXPECT_NE(slurp(maildir_ / "subscriptions").find("Reports.New\n"), std::string::npos);
  EXPECT_EQ(run(slurp(samples_dir() / "failure/dmarc_ruf_report_linkedin.eml"), "nobody"), 0) << stderr_;
  EXPECT_EQ(filed("Failures"), 1U);
}

TEST_F(ServiceMailBinary, AsRootRefusesAndKeepsTheMail) {
  EXPECT_EQ(run(sample_message(), ""), 75);
  EXPECT_NE(stderr_.find("root"), std::string::npos) << stderr_;
  EXPECT_FALSE(fs::exists(maildir_));
}

TEST_F(ServiceMailBinary, UnknownRecipientIsPermanent) {
  EXPECT_EQ(run(sample_message(), "nobody", "joe@pydis.wtf"), 67) << stderr_;
  EXPECT_FALSE(fs::exists(maildir_));
}

TEST_F(ServiceMailBinary, AMessageOverTheSizeLimitBounces) {
  spit(
      dir_ / "chainmail.conf",
      "[directory]\nldif_file = \"/dev/null\"\n[services]\n\"dmarc\" = \"dmarc-reports:" + maildir_.string() +
          "\"\n[service_mail]\nlog = \"stderr\"\n[dmarc_reports]\nmax_message_bytes = 2048\n");
  EXPECT_EQ(run(report_message("r.xml", "text/xml", std::string(4096, ' ')), "nobody"), 65) << stderr_;
  EXPECT_NE(stderr_.find("max_message_bytes"), std::string::npos) << stderr_;
  EXPECT_FALSE(fs::exists(maildir_));
  EXPECT_EQ(run(report_message("r.xml", "text/xml", "<feedback/>"), "nobody"), 0) << stderr_;
}

TEST_F(ServiceMailBinary, BadConfigurationOrCommandLineWaits) {
  spit(dir_ / "chainmail.conf", "[services]\nbogus = 1\n");
  EXPECT_EQ(run(sample_message(), "nobody"), 75) << stderr_;
  EXPECT_NE(stderr_.find("configuration"), std::string::npos) << stderr_;
  const int status = std::system((std::string("setpriv --reuid=nobody --regid=nogroup --clear-groups ") +
                                  CHAINMAIL_SERVICE_MAIL_BIN + " --no-such-flag </dev/null 2>/dev/null")
                                     .c_str());
  EXPECT_EQ(WEXITSTATUS(status), 75);
}

TEST_F(ServiceMailBinary, DiskFullIsTemporaryAndLeavesNoPartialFile) {
  ASSERT_EQ(::unshare(CLONE_NEWNS), 0);
  ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
  const fs::path full = dir_ / "full";
  fs::create_directories(full);
  ASSERT_EQ(::mount("tmpfs", full.c_str(), "tmpfs", 0, "size=128k,mode=0777"), 0) << std::strerror(errno);
  maildir_ = full / "Maildir";
  write_config(maildir_);
  // Fits the size cap, not the file system.
  const std::string big = report_message("r.xml", "text/xml", std::string(std::size_t{400} * 1024, ' '));
  EXPECT_EQ(run(big, "nobody"), 75) << stderr_;
  EXPECT_NE(stderr_.find("No space left on device"), std::string::npos) << stderr_;
  for (const auto& folder : {maildir_, maildir_ / ".Reports.Invalid", maildir_ / ".Reports.New"}) {
    EXPECT_TRUE(files_in(folder / "tmp").empty()) << folder;
    EXPECT_TRUE(files_in(folder / "new").empty()) << folder;
  }
  // Once there is room, the retry succeeds.
  EXPECT_EQ(run(sample_message(), "nobody"), 0) << stderr_;
}

TEST_F(ServiceMailBinary, ZipBombIsInvalidWithinTheCapAndBoundedMemory) {
  // 1 GiB of zeros deflated (about 1 MB), generated here, never committed.
  const fs::path bomb = dir_ / "bomb.zip";
  const std::string py =
      "/usr/bin/python3 -c \"import zipfile,sys\n"
      "z=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED)\n"
      "f=z.open('report.xml','w',force_zip64=True)\n"
      "c=bytes(1<<20)\n"
      "[f.write(c) for _ in range(1024)]\n"
      "f.close();z.close()\" " +
      bomb.string();
  ASSERT_EQ(std::system(py.c_str()), 0);
  const std::string zip = slurp(bomb);
  ASSERT_LT(zip.size(), 4U << 20);
  rusage before{};
  getrusage(RUSAGE_CHILDREN, &before);
  EXPECT_EQ(run(report_message("bomb.zip", "application/zip", zip), "nobody"), 0) << stderr_;
  rusage after{};
  getrusage(RUSAGE_CHILDREN, &after);
  EXPECT_EQ(filed("Reports.Invalid"), 1U);
  EXPECT_NE(stderr_.find("limit"), std::string::npos) << stderr_;
  // Inflating it all would take 1 GiB; the cap (32 MiB) plus the message and sanitizer overhead stays far
  // below.
  EXPECT_LT(after.ru_maxrss, 400L * 1024L) << "peak RSS " << after.ru_maxrss << " KiB";
  std::cout << "service-mail peak RSS on the zip bomb: " << after.ru_maxrss << " KiB\n";
}

TEST_F(ServiceMailBinary, HostileXmlIsInvalidAndReadsNoFile) {
  const fs::path secret = dir_ / "secret.txt";
  spit(secret, "TOP-SECRET-CONTENT");
  const std::string xxe = "<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY x SYSTEM \"file://" +
                          secret.string() +
                          "\">]><feedback><report_metadata><org_name>&x;</org_name>"
                          "</report_metadata></feedback>";
  EXPECT_EQ(run(report_message("r.xml", "text/xml", xxe), "nobody"), 0) << stderr_;
  EXPECT_EQ(filed("Reports.Invalid"), 1U);
  EXPECT_EQ(stderr_.find("TOP-SECRET"), std::string::npos);
  const std::string gz =
      slurp(samples_dir() / "aggregate/fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz");
  EXPECT_EQ(run(report_message("r.xml.gz", "application/gzip", gz.substr(0, gz.size() / 2)), "nobody"), 0);
  EXPECT_EQ(filed("Reports.Invalid"), 2U);
}

// Dovecot (its own instance, private config) finds the folder, the subscription and the message as filed.
TEST_F(ServiceMailBinary, DovecotServesTheFiledReport) {
  if (!fs::exists("/usr/sbin/dovecot")) GTEST_SKIP() << "no Dovecot";
  const fs::path conf = dir_ / "dovecot.conf";
  fs::create_directories(dir_ / "run");
  fs::create_directories(dir_ / "state");
  spit(conf, "base_dir = " + (dir_ / "run").string() + "\nstate_dir = " + (dir_ / "state").string() +
                 "\nlog_path = " + (dir_ / "dovecot.log").string() +
                 "\nssl = no\nprotocols = imap\ndefault_internal_user = nobody\ndefault_login_user = nobody\n"
                 "mail_location = maildir:" +
                 maildir_.string() +
                 "\nuserdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=" + dir_.string() +
                 "\n}\npassdb {\n  driver = static\n  args = password=x\n}\n"
                 "service imap-login {\n  inet_listener imap {\n    port = 0\n  }\n}\n");
  ASSERT_EQ(run(slurp(samples_dir() / "aggregate/twilight.eml"), "nobody"), 0) << stderr_;
  ASSERT_EQ(std::system(("/usr/sbin/dovecot -c " + conf.string()).c_str()), 0);
  auto doveadm = [&](const std::string& args) {
    const fs::path out = dir_ / "doveadm.out";
    const int rc =
        std::system(("doveadm -c " + conf.string() + " " + args + " > " + out.string() + " 2>&1").c_str());
    std::string text = slurp(out);
    return rc == 0 ? text : "failed: " + text;
  };
  std::string listed;
  for (int i = 0; i < 50 && listed.find("Reports.New") == std::string::npos; ++i) {
    listed = doveadm("mailbox list -s -u u");  // -s: subscribed only
    if (listed.find("Reports.New") == std::string::npos) usleep(100000);
  }
  const std::string fetched = doveadm("fetch -u u hdr.subject mailbox Reports.New ALL");
  static_cast<void>(std::system(("doveadm -c " + conf.string() + " stop >/dev/null 2>&1").c_str()));
  EXPECT_NE(listed.find("Reports.New"), std::string::npos) << listed;
  EXPECT_NE(fetched.find("Report domain: twlnet.com Submitter: google.com"), std::string::npos) << fetched;
}

}  // namespace
}  // namespace chainmail
