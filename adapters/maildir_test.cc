// maildir_test.cc - Maildir++ delivery: folders, subscriptions, names with the size, nothing partial left.
#include "adapters/maildir.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace chainmail {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "maildir-test-XXXXXX").string();
    path = mkdtemp(tmpl.data()) != nullptr ? fs::path(tmpl) : fs::path();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t count(const fs::path& dir) {
  std::error_code ec;
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir, ec), fs::directory_iterator()));
}

TEST(Maildir, DeliversIntoNewWithTheSizeInTheName) {
  TempDir t;
  const auto root = t.path / "Maildir";
  const auto d = deliver_to_maildir(root, "", "Subject: x\n\nbody\n");
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(fs::path(d.path).parent_path(), root / "new");
  EXPECT_NE(d.path.find(",S=17"), std::string::npos) << d.path;
  EXPECT_EQ(slurp(d.path), "Subject: x\n\nbody\n");
  EXPECT_EQ(count(root / "tmp"), 0U);
  EXPECT_TRUE(fs::is_directory(root / "cur"));
  EXPECT_FALSE(fs::exists(root / "subscriptions"));  // INBOX needs no subscription
}

TEST(Maildir, CreatesAndSubscribesAFolderOnce) {
  TempDir t;
  const auto root = t.path / "Maildir";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(deliver_to_maildir(root, "Reports.New", "m\n").ok);
  ASSERT_TRUE(deliver_to_maildir(root, "Failures", "m\n").ok);
  EXPECT_TRUE(fs::exists(root / ".Reports.New" / "maildirfolder"));
  EXPECT_EQ(count(root / ".Reports.New" / "new"), 3U);
  EXPECT_EQ(slurp(root / "subscriptions"), "Reports.New\nFailures\n");
  EXPECT_FALSE(fs::exists(root / "subscriptions.lock"));
}

TEST(Maildir, KeepsDovecotsVersion2SubscriptionsFormat) {
  TempDir t;
  const auto root = t.path / "Maildir";
  fs::create_directories(root);
  std::ofstream(root / "subscriptions") << "V\t2\n\nArchive\n";
  ASSERT_TRUE(deliver_to_maildir(root, "Reports.New", "m\n").ok);
  ASSERT_TRUE(deliver_to_maildir(root, "Reports.New", "m\n").ok);
  EXPECT_EQ(slurp(root / "subscriptions"), "V\t2\n\nArchive\nReports\tNew\n");
}

TEST(Maildir, RefusesFolderNamesThatLeaveTheMaildir) {
  TempDir t;
  for (const char* bad : {"../x", ".hidden", "a/b", "a..b", "trailing.", "tab\there"}) {
    const auto d = deliver_to_maildir(t.path / "Maildir", bad, "m\n");
    EXPECT_FALSE(d.ok) << bad;
  }
}

TEST(Maildir, InboxByEitherNameIsTheRoot) {
  TempDir t;
  const auto root = t.path / "Maildir";
  for (const char* inbox : {"", "INBOX"}) ASSERT_TRUE(deliver_to_maildir(root, inbox, "m\n").ok) << inbox;
  EXPECT_FALSE(fs::exists(root / ".INBOX"));
  EXPECT_EQ(std::distance(fs::directory_iterator(root / "new"), fs::directory_iterator()), 2);
  EXPECT_FALSE(fs::exists(root / "subscriptions"));  // the root is never subscribed to as a folder
}

TEST(Maildir, AnUnwritableFolderIsTroubleAndLeavesNothing) {
  TempDir t;
  const auto root = t.path / "Maildir";
  ASSERT_TRUE(deliver_to_maildir(root, "", "m\n").ok);
  fs::permissions(t.path, fs::perms::all);
  fs::permissions(root / "new", fs::perms::owner_read | fs::perms::owner_exec | fs::perms::others_read |
                                    fs::perms::others_exec);
  fs::permissions(root, fs::perms::all);
  fs::permissions(root / "tmp", fs::perms::all);
  // root writes anywhere: as root, the delivery runs in a child that is nobody.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(2);
    const auto d = deliver_to_maildir(root, "", "m\n");
    _exit(d.ok ? 1 : (d.error.find("link") != std::string::npos ? 0 : 3));
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(count(root / "tmp"), 0U);
  EXPECT_EQ(count(root / "new"), 1U);
  fs::permissions(root / "new", fs::perms::owner_all);
}

}  // namespace
}  // namespace chainmail
