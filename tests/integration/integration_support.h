// integration_support.h: what every integration suite shares: a configuration generated from
// conf/chainmail.conf for the test's slapd, the real `chainmail` binary run with --json, and a fixture base
// that starts one slapd (conf/ldap/demo.ldif) per test suite.
//
//   ConfigFile config(demo_config({slapd().uri()}, {{"search_timeout_ms", "500"}}));
//   const RouteRun r = route(config.path(), {"joe@pydis.wtf"});
//   EXPECT_EQ(r.run.exit_code, 0);
//   EXPECT_EQ(targets_of(r.json[0]), (std::vector<TargetView>{{"forward", "joe@jb3.dev",
//   "forward>external"}}));
//
// A target's path is summarised as its rule names joined with '>' (letters omitted): the first lettered rule
// decided the input address, the last one decided the target.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "harness/process.h"
#include "harness/slapd.h"
#include "harness/temp_dir.h"

namespace chainmail::integration {

std::string read_text(const std::filesystem::path& path);

// `s` as a TOML basic string, quotes included.
std::string toml_string(std::string_view s);

// The path of the chainmail binary under test.
std::filesystem::path chainmail_bin();

// conf/chainmail.conf with its `uris = [...]` line pointing at `uris`, bind_password_file replaced by the
// demo password, and each `name = value` of `settings` replacing the line that starts with "name =" (the
// value is TOML, quotes included). Throws std::runtime_error when a setting's line is not in the file.
std::string demo_config(const std::vector<std::string>& uris,
                        const std::map<std::string, std::string>& settings = {});

// A configuration file in its own TempDir.
class ConfigFile {
 public:
  explicit ConfigFile(std::string_view text, std::string_view name = "chainmail.conf");
  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  harness::TempDir dir_;
  std::filesystem::path path_;
};

struct RouteRun {
  harness::RunResult run;
  nlohmann::json json;  // the parsed stdout; discarded (is_discarded()) when it is not JSON
  std::chrono::milliseconds elapsed{0};
};

// chainmail route --config CONFIG --json ADDRESS...
RouteRun route(const std::filesystem::path& config, const std::vector<std::string>& addresses,
               std::chrono::milliseconds timeout = std::chrono::seconds(30));

struct TargetView {
  std::string kind;
  std::string address;
  std::string rules;  // "group>member>forward>external"
  friend bool operator==(const TargetView&, const TargetView&) = default;
};
std::ostream& operator<<(std::ostream& out, const TargetView& t);

std::vector<TargetView> targets_of(const nlohmann::json& result);
std::vector<std::string> warnings_of(const nlohmann::json& result);

// True when `address` is one RFC 5321 mailbox: local@domain with a dot-atom local part (RFC 5322 atext and
// dots) or a quoted one, and a domain of letters, digits, hyphens and dots. What a socketmap reply or an
// envelope rewrite may carry as one list element.
bool is_single_address(std::string_view address);

// Sanitizer reports in a child's stderr or log (ASan, LSan and UBSan builds).
bool has_sanitizer_report(std::string_view text);

// A test suite fixture with one slapd for the whole suite (started in SetUpTestSuite). SetUp resumes it if a
// test left it paused and restarts it if a test left it stopped, so each test starts with a working slapd.
template <typename Base = testing::Test>
class SlapdSuite : public Base {
 public:
  static void SetUpTestSuite() {
    start_error() = std::string();
    try {
      slapd_ptr() = std::make_unique<harness::Slapd>();
      slapd_ptr()->start();
    } catch (const std::exception& e) {
      slapd_ptr().reset();
      start_error() = e.what();
    }
  }
  static void TearDownTestSuite() { slapd_ptr().reset(); }

 protected:
  void SetUp() override {
    ASSERT_NE(slapd_ptr(), nullptr) << "slapd did not start: " << start_error();
    slapd_ptr()->resume();
    if (!slapd_ptr()->running()) slapd_ptr()->restart();
  }

  static harness::Slapd& slapd() { return *slapd_ptr(); }

 private:
  static std::unique_ptr<harness::Slapd>& slapd_ptr() {
    static std::unique_ptr<harness::Slapd> slapd;
    return slapd;
  }
  static std::string& start_error() {
    static std::string error;
    return error;
  }
};

}  // namespace chainmail::integration
