// config_cli_test.cc: `chainmail config check` and `chainmail config defaults`, and how `chainmail route`
// and the argument parser report a bad configuration or bad usage (sysexits: 78 EX_CONFIG, 64 EX_USAGE).
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "harness/paths.h"
#include "integration_support.h"

namespace chainmail::integration {
namespace {

harness::RunResult chainmail(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {chainmail_bin().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return harness::run(argv);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(ConfigCheck, SampleConfigurationsAreGood) {
  for (const char* name : {"chainmail.conf", "chainmail-ldif.conf"}) {
    const auto path = harness::source_dir() / "conf" / name;
    const harness::RunResult r = chainmail({"config", "check", path.string()});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.out, path.string() + ": ok\n");
    EXPECT_EQ(r.err, "");
  }
}

// Every error is reported, each with its line, and nothing else is printed.
TEST(ConfigCheck, BadFileReportsEveryErrorWithItsLine) {
  const ConfigFile config(
      "# a configuration with one error per marked line\n"  // 1
      "[domains]\n"                                         // 2
      "main = \"pydis.wtf\"\n"                              // 3
      "colour = \"blue\"\n"                                 // 4  unknown key
      "[routing]\n"                                         // 5
      "max_depth = \"20\"\n"                                // 6  wrong type
      "max_expansion = 0\n"                                 // 7  out of bounds (min 1)
      "[transport]\n"                                       // 8
      "\"not an address\" = \"svc\"\n"                      // 9  bad transport key
      "\"ok@pydis.wtf\" = [\"a\", \"b\"]\n"                 // 10 wrong type: one service only
      "\"x@pydis.wtf\" = \"two words\"\n"                   // 11 bad service name
      "[directory]\n"                                       // 12
      "uris = [\"ldap://127.0.0.1:389/\"]\n"                // 13
      "search_timeout_ms = 5\n"                             // 14 out of bounds (min 10)
      "starttls = \"yes\"\n"                                // 15 wrong type
      "[nosuch]\n"                                          // 16 unknown section
      "x = 1\n",                                            // 17
      "bad.conf");
  const harness::RunResult r = chainmail({"config", "check", config.path().string()});
  EXPECT_EQ(r.exit_code, 78) << r.out << r.err;
  const std::string file = config.path().string();
  const std::vector<std::string> wanted = {
      file + ":4: domains.colour: unknown key",
      file + ":6: routing.max_depth: expected an integer",
      file + ":7: routing.max_expansion: 0 is out of bounds",
      file + ":9: transport.not an address: ",
      file + ":10: transport.ok@pydis.wtf: expected a string",
      file + ":11: transport.x@pydis.wtf: ",
      file + ":14: directory.search_timeout_ms: 5 is out of bounds",
      file + ":15: directory.starttls: expected true or false",
      file + ":16: nosuch: unknown key",
  };
  const auto lines = lines_of(r.out);
  for (const auto& w : wanted) {
    const bool found =
        std::any_of(lines.begin(), lines.end(), [&w](const std::string& l) { return l.starts_with(w); });
    EXPECT_TRUE(found) << "missing \"" << w << "\" in:\n" << r.out;
  }
  EXPECT_EQ(lines.size(), wanted.size()) << r.out;
  EXPECT_EQ(r.out.find(": ok"), std::string::npos) << r.out;
}

TEST(ConfigCheck, SyntaxErrorHasItsLine) {
  const ConfigFile config("[domains]\nmain = \"pydis.wtf\"\n[routing\n", "syntax.conf");
  const harness::RunResult r = chainmail({"config", "check", config.path().string()});
  EXPECT_EQ(r.exit_code, 78) << r.out << r.err;
  EXPECT_TRUE(r.out.starts_with(config.path().string() + ":3: ")) << r.out;
}

TEST(ConfigCheck, MissingFile) {
  const harness::RunResult r = chainmail({"config", "check", "/nonexistent/chainmail.conf"});
  EXPECT_EQ(r.exit_code, 78) << r.out << r.err;
  EXPECT_NE(r.out.find("/nonexistent/chainmail.conf: cannot read"), std::string::npos) << r.out;
}

// The defaults are a valid file as soon as a directory is set, and they name every parameter the sample
// configuration uses.
TEST(ConfigDefaults, EverySectionAndParsesBack) {
  const harness::RunResult r = chainmail({"config", "defaults"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* section :
       {"[domains]", "[routing]", "[transport]", "[aliases]", "[directory]", "[cache]", "[socketmap]"}) {
    EXPECT_NE(r.out.find(std::string("\n") + section + "\n"), std::string::npos) << section;
  }
  // Every `name = value` of a parameter section in the sample appears in the defaults.
  const std::string sample = read_text(harness::source_dir() / "conf" / "chainmail.conf");
  const std::regex key_line(R"(^([a-z_]+) = )");
  std::string section;
  for (const auto& line : lines_of(sample)) {
    if (line.starts_with("[")) section = line;
    std::smatch m;
    if (section == "[transport]" || section == "[aliases]" || !std::regex_search(line, m, key_line)) continue;
    EXPECT_NE(r.out.find("\n" + m[1].str() + " = "), std::string::npos) << section << " " << m[1].str();
  }

  // As printed: the only error is the missing directory, on the line of `uris`.
  const ConfigFile as_printed(r.out, "defaults.conf");
  harness::RunResult check = chainmail({"config", "check", as_printed.path().string()});
  EXPECT_EQ(check.exit_code, 78) << check.out;
  const auto lines = lines_of(r.out);
  const auto uris = std::find(lines.begin(), lines.end(), "uris = []");
  ASSERT_NE(uris, lines.end()) << r.out;
  const auto uris_line = std::to_string(uris - lines.begin() + 1);
  EXPECT_EQ(check.out,
            as_printed.path().string() + ":" + uris_line +
                ": directory.uris: no directory: set directory.uris (LDAP) or directory.ldif_file\n");

  std::string with_directory = r.out;
  with_directory.replace(with_directory.find("uris = []"), 9, R"(uris = ["ldap://127.0.0.1:389/"])");
  const ConfigFile fixed(with_directory, "defaults.conf");
  check = chainmail({"config", "check", fixed.path().string()});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_EQ(check.out, fixed.path().string() + ": ok\n");
}

TEST(ConfigUse, RouteWithBadConfigurationExits78) {
  const ConfigFile config("[routing]\nmax_depth = 0\n", "bad.conf");
  const RouteRun r = route(config.path(), {"alice@pydis.wtf"});
  EXPECT_EQ(r.run.exit_code, 78) << r.run.out << r.run.err;
  EXPECT_EQ(r.run.out, "");
  EXPECT_NE(r.run.err.find(config.path().string() + ":2: routing.max_depth: 0 is out of bounds"),
            std::string::npos)
      << r.run.err;
}

TEST(ConfigUse, UsageErrorsExit64) {
  EXPECT_EQ(chainmail({"route"}).exit_code, 64);  // no address
  EXPECT_EQ(chainmail({"no-such-command"}).exit_code, 64);
  EXPECT_EQ(chainmail({"config"}).exit_code, 64);
}

}  // namespace
}  // namespace chainmail::integration
