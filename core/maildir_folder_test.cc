#include "core/maildir_folder.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace chainmail {
namespace {

TEST(MaildirFolder, InboxIsTheRoot) {
  for (const char* inbox : {"", "INBOX"}) {
    EXPECT_TRUE(is_inbox_folder(inbox)) << inbox;
    EXPECT_TRUE(valid_maildir_folder(inbox)) << inbox;
    EXPECT_EQ(maildir_folder_dir("/m", inbox), std::filesystem::path("/m")) << inbox;
  }
  EXPECT_FALSE(is_inbox_folder("Inbox.Sub"));
}

TEST(MaildirFolder, AFolderIsOneDotDirectoryBelowTheRoot) {
  EXPECT_EQ(maildir_folder_dir("/m", "Reports.New"), std::filesystem::path("/m/.Reports.New"));
  EXPECT_EQ(maildir_folder_dir("/m", "Failures"), std::filesystem::path("/m/.Failures"));
  for (const char* good : {"Reports.New", "Failures", "a.b.c", "with space"})
    EXPECT_TRUE(valid_maildir_folder(good)) << good;
}

TEST(MaildirFolder, RefusesNamesThatLeaveTheRootOrHideAPart) {
  for (const char* bad :
       {"../x", ".hidden", "a/b", "a..b", "trailing.", ".", "..", "tab\there", "del\x7f", "new\nline"})
    EXPECT_FALSE(valid_maildir_folder(bad)) << bad;
}

}  // namespace
}  // namespace chainmail
