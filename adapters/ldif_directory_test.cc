#include "adapters/ldif_directory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace chainmail {
namespace {

DirectorySchema demo_schema() {
  Config c = default_config();
  c.directory.base_dn = "dc=box,dc=pydis,dc=wtf";
  return DirectorySchema::from(c);
}

std::filesystem::path demo_ldif() {
  return std::filesystem::path(CHAINMAIL_SOURCE_DIR) / "conf/ldap/demo.ldif";
}

TEST(LdifDirectory, LoadsTheDemoDirectory) {
  LdifDirectory d(demo_ldif(), demo_schema());
  EXPECT_GT(d.size(), 20U);

  const auto joe = d.user_by_mail("JOE@pydis.wtf");
  ASSERT_TRUE(joe.is_found());
  EXPECT_EQ(joe.value()->uid, "joe");
  EXPECT_EQ(joe.value()->forward, std::vector<std::string>{"joe@jb3.dev"});

  EXPECT_TRUE(d.user_by_mail("dave@pydis.wtf").is_found()) << "directory value is Dave@pydis.wtf";
  EXPECT_TRUE(d.user_by_mail("nobody@pydis.wtf").is_not_found());
  EXPECT_TRUE(d.user_by_mail("*").is_not_found());

  const auto devops = d.group_by_name("DevOps");
  ASSERT_TRUE(devops.is_found());
  EXPECT_EQ(devops.value()->member.size(), 3U);
  EXPECT_TRUE(d.group_by_name("alice").is_not_found()) << "users are not groups";

  const auto mallory = d.user_by_mail("mallory@pydis.wtf");
  ASSERT_TRUE(mallory.is_found());
  EXPECT_TRUE(mallory.value()->locked);

  // DNs compare after normalisation: case and spacing do not matter.
  EXPECT_TRUE(d.entry_by_dn("UID=alice, cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf").is_found());
  EXPECT_TRUE(d.entry_by_dn("uid=gone1,cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf").is_not_found());
  EXPECT_TRUE(d.entry_by_dn("not a dn").is_not_found());
}

std::filesystem::path write_temp(const std::string& text) {
  auto path = std::filesystem::temp_directory_path() / ("chainmail-ldif-" + std::to_string(getpid()));
  std::ofstream(path) << text;
  return path;
}

TEST(LdifDirectory, DuplicateMailIsTroubleNotAGuess) {
  const auto path = write_temp(
      "dn: uid=a,cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf\nuid: a\nmail: same@pydis.wtf\n\n"
      "dn: uid=b,cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf\nuid: b\nmail: same@pydis.wtf\n");
  LdifDirectory d(path, demo_schema());
  std::filesystem::remove(path);
  const auto got = d.user_by_mail("same@pydis.wtf");
  ASSERT_TRUE(got.is_trouble());
  EXPECT_EQ(got.trouble_info().kind, Trouble::Kind::configuration);
}

TEST(LdifDirectory, BadFilesAreReportedNotSwallowed) {
  EXPECT_THROW(LdifDirectory("/nonexistent/chainmail.ldif", demo_schema()), std::runtime_error);
  const auto path = write_temp("dn: uid=a,cn=users,cn=accounts,dc=box,dc=pydis,dc=wtf\nthis is not ldif\n");
  EXPECT_THROW(LdifDirectory(path, demo_schema()), std::runtime_error);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace chainmail
