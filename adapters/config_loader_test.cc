#include "adapters/config_loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace chainmail {
namespace {

std::filesystem::path conf_dir() {
  return std::filesystem::path(CHAINMAIL_SOURCE_DIR) / "conf";
}

LoadedConfig load(const std::string& text) {
  return load_config_text(text, "test.conf", "/tmp");
}

TEST(ConfigLoader, LoadsTheShippedConfigurations) {
  for (const char* name : {"chainmail.conf", "chainmail-ldif.conf"}) {
    const auto loaded = load_config_file(conf_dir() / name);
    EXPECT_TRUE(loaded.ok()) << name << ": " << (loaded.errors.empty() ? "" : loaded.errors.front());
  }
  const auto c = load_config_file(conf_dir() / "chainmail.conf").config;
  EXPECT_EQ(c.directory.bind_password, "chainmail-demo") << "read from bind_password_file";
  EXPECT_EQ(c.transport.at("fortune@int.pydis.wtf"), std::vector<std::string>{"fortune"});
  EXPECT_EQ(c.aliases.at("security").size(), 2U);
  EXPECT_EQ(c.domains.aliases.size(), 3U);
}

TEST(ConfigLoader, ReportsEveryErrorWithItsLine) {
  const auto loaded = load(
      "[directory]\n"                     // 1
      "uris = [\"ldap://127.0.0.1/\"]\n"  // 2
      "search_timeout_ms = 1\n"           // 3 out of bounds
      "starttls = \"yes\"\n"              // 4 wrong type
      "colour = \"blue\"\n"               // 5 unknown key
      "[routing]\n"                       // 6
      "max_depth = \"deep\"\n"            // 7 wrong type
      "[transport]\n"                     // 8
      "\"not an address\" = \"svc\"\n"    // 9 bad key
      "[nonsense]\n"                      // 10 unknown section
      "x = 1\n");
  ASSERT_FALSE(loaded.ok());
  const std::vector<std::string> want = {"test.conf:3: directory.search_timeout_ms",
                                         "test.conf:4: directory.starttls",
                                         "test.conf:5: directory.colour",
                                         "test.conf:7: routing.max_depth",
                                         "test.conf:9: transport.not an address",
                                         "test.conf:10: nonsense"};
  for (const auto& w : want) {
    bool found = false;
    for (const auto& e : loaded.errors) found = found || e.rfind(w, 0) == 0;
    EXPECT_TRUE(found) << "missing error starting with: " << w;
  }
  EXPECT_EQ(loaded.errors.size(), want.size());
}

TEST(ConfigLoader, AutoreplyProfilesInheritAndOverride) {
  const std::string head =
      "[directory]\nldif_file = \"/dev/null\"\n"
      "[services]\n\"fortune\" = \"autoreply\"\n\"help\" = \"autoreply:help\"\n";
  // The profile comes before some of [autoreply]'s keys in the file, and still inherits them.
  const auto loaded = load(head +
                           "[autoreply.help]\nsubject = \"Help: %s\"\nperiod_s = 60\n"
                           "[autoreply]\nbody = \"Shared body\"\nsendmail = \"/opt/postfix/sendmail\"\n");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  const auto& c = loaded.config;
  ASSERT_EQ(c.autoreply_profiles.count("help"), 1U);
  const auto& help = c.autoreply_profiles.at("help");
  EXPECT_EQ(help.subject, "Help: %s");
  EXPECT_EQ(help.period_s, 60);
  EXPECT_EQ(help.body, "Shared body");
  EXPECT_EQ(help.sendmail, "/opt/postfix/sendmail");
  EXPECT_EQ(c.autoreply.subject, "Re: %s");  // [autoreply] itself is unchanged
  EXPECT_EQ(c.autoreply.period_s, 86400);
  EXPECT_EQ(autoreply_profile(c, parse_service_spec("autoreply:help")), &help);
  EXPECT_EQ(autoreply_profile(c, parse_service_spec("autoreply")), &c.autoreply);
  EXPECT_EQ(autoreply_profile(c, parse_service_spec("autoreply:nope")), nullptr);

  const auto bad = load(head +
                        "\"other\" = \"autoreply:missing\"\n"  // 6
                        "[autoreply.help]\n"                   // 7
                        "colour = \"red\"\n"                   // 8 unknown key
                        "period_s = 0\n"                       // 9 out of bounds
                        "sendmail = \"sendmail\"\n");          // 10 not absolute
  const std::vector<std::string> want = {"test.conf:6: services.other", "test.conf:8: autoreply.help.colour",
                                         "test.conf:9: autoreply.help.period_s",
                                         "test.conf:10: autoreply.help.sendmail"};
  for (const auto& w : want) {
    bool found = false;
    for (const auto& e : bad.errors) found = found || e.rfind(w, 0) == 0;
    EXPECT_TRUE(found) << "missing error starting with: " << w;
  }
  EXPECT_EQ(bad.errors.size(), want.size()) << (bad.errors.empty() ? "" : bad.errors.back());
}

TEST(ConfigLoader, SyntaxErrorsNameTheLine) {
  const auto loaded = load("[domains]\nmain = \n");
  ASSERT_EQ(loaded.errors.size(), 1U);
  EXPECT_EQ(loaded.errors.front().rfind("test.conf:2:", 0), 0U) << loaded.errors.front();
}

TEST(ConfigLoader, SecretsComeFromFiles) {
  const auto dir = std::filesystem::temp_directory_path() / ("chainmail-conf-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "pw") << "s3cret\nignored second line\n";
  auto loaded =
      load_config_text("[directory]\nuris = [\"ldap://x/\"]\nbind_password_file = \"pw\"\n", "t", dir);
  EXPECT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config.directory.bind_password, "s3cret");

  loaded =
      load_config_text("[directory]\nuris = [\"ldap://x/\"]\nbind_password_file = \"missing\"\n", "t", dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.errors.front().find("cannot read"), std::string::npos);

  loaded = load_config_text(
      "[directory]\nuris = [\"ldap://x/\"]\nbind_password = \"a\"\nbind_password_file = \"pw\"\n", "t", dir);
  EXPECT_FALSE(loaded.ok());
  std::filesystem::remove_all(dir);
}

TEST(ConfigLoader, DefaultsRoundTrip) {
  const std::string text = render_defaults();
  for (const auto& p : params()) {
    const auto dot = p.key.find('.');
    EXPECT_NE(text.find(std::string(dot == std::string_view::npos ? p.key : p.key.substr(dot + 1))),
              std::string::npos)
        << p.key;
  }
  // The defaults file is itself a valid configuration once a directory is named.
  const auto loaded = load(text + "\n[directory]\n");
  EXPECT_FALSE(loaded.ok()) << "[directory] twice is a TOML error";
  std::string with_dir = text;
  const auto pos = with_dir.find("uris = []");
  ASSERT_NE(pos, std::string::npos);
  with_dir.replace(pos, 9, "uris = [\"ldap://127.0.0.1/\"]");
  const auto good = load(with_dir);
  EXPECT_TRUE(good.ok()) << (good.errors.empty() ? "" : good.errors.front());
}

}  // namespace
}  // namespace chainmail

namespace chainmail {
namespace {

TEST(ConfigLoader, DocumentationShowsTheCurrentDefaults) {
  std::ifstream in(conf_dir().parent_path() / "docs/configuration.md");
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(doc.find(render_defaults()), std::string::npos)
      << "docs/configuration.md is stale: regenerate its block with `chainmail config defaults`";
}

}  // namespace
}  // namespace chainmail
