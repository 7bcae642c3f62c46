// dmarc_cli_integration_test.cc - the real `chainmail dmarc` binary (CHAINMAIL_BIN) on the shared DMARC
// corpus (CHAINMAIL_DMARC_SAMPLES): counts against what the XML says, bad files named and skipped with exit
// status 1, the Maildir folders of [dmarc_reports], filters, CSV and usage errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;

fs::path aggregate_dir() {
  return fs::path(CHAINMAIL_DMARC_SAMPLES) / "aggregate";
}

// The corpus files that are not valid reports (see the corpus README and service-mail's tests).
constexpr std::array<std::string_view, 3> kBad = {"ikea.com!example.de!1538690400!1538776800.xml",
                                                  "invalid_utf_8.xml", "invalid_xml.xml"};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};

class DmarcCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dmarc_cli_test." + std::to_string(getpid()) + "." +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs chainmail with `args` (each quoted for sh), no configuration unless one is passed.
  RunResult run(const std::vector<std::string>& args) const { return run_binary(CHAINMAIL_BIN, args); }

  RunResult run_binary(const fs::path& binary, const std::vector<std::string>& args) const {
    std::string cmd =
        "CHAINMAIL_CONFIG=" + quote((dir_ / "absent.conf").string()) + " " + quote(binary.string());
    // Built piecewise: GCC 12 warns (-Wrestrict, falsely) on " " + std::string(...).
    for (const auto& a : args) {
      cmd += ' ';
      cmd += quote(a);
    }
    cmd += " >";
    cmd += quote((dir_ / "out").string());
    cmd += " 2>";
    cmd += quote((dir_ / "err").string());
    RunResult r;
    const int rc = std::system(cmd.c_str());
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(dir_ / "out");
    r.err = slurp(dir_ / "err");
    return r;
  }

  nlohmann::json run_json(std::vector<std::string> args, int want_status) const {
    args.insert(args.begin(), {"dmarc", "--json"});
    const auto r = run(args);
    EXPECT_EQ(r.status, want_status) << r.err;
    return nlohmann::json::parse(r.out);
  }

  fs::path dir_;
};

// The sum of the <count> elements of a report document.
std::uint64_t xml_message_count(const std::string& xml) {
  static const std::regex count(R"(<count>\s*([0-9]+)\s*</count>)");
  std::uint64_t sum = 0;
  for (auto it = std::sregex_iterator(xml.begin(), xml.end(), count); it != std::sregex_iterator(); ++it)
    sum += std::stoull((*it)[1].str());
  return sum;
}

std::string xml_org(const std::string& xml) {
  static const std::regex org(R"(<org_name>([^<]*)</org_name>)");
  std::smatch m;
  return std::regex_search(xml, m, org) ? m[1].str() : std::string();
}

// The report XML of a corpus file, decompressed by the system's own tools.
std::string corpus_xml(const fs::path& file, const fs::path& scratch) {
  const std::string name = file.filename().string();
  std::string cmd;
  if (name.ends_with(".gz")) cmd = "gzip -dc " + quote(file.string());
  if (name.ends_with(".zip")) cmd = "unzip -p " + quote(file.string());
  if (cmd.empty()) return slurp(file);
  EXPECT_EQ(std::system((cmd + " >" + quote(scratch.string())).c_str()), 0) << cmd;
  return slurp(scratch);
}

TEST_F(DmarcCli, EachFileCountsWhatItsXmlSays) {
  std::size_t checked = 0;
  for (const auto& entry : fs::directory_iterator(aggregate_dir())) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".eml")) continue;  // the XML is inside MIME; checked as a whole below
    const bool bad = std::find(kBad.begin(), kBad.end(), name) != kBad.end();
    const auto j = run_json({"--view", "reports", entry.path().string()}, bad ? 1 : 0);
    if (bad) {
      EXPECT_EQ(j["reports"].size(), 0U) << name;
      EXPECT_EQ(j["totals"]["bad"], 1) << name;
      continue;
    }
    const auto xml = corpus_xml(entry.path(), dir_ / "xml");
    ASSERT_EQ(j["reports"].size(), 1U) << name;
    EXPECT_EQ(j["reports"][0]["messages"], xml_message_count(xml)) << name;
    EXPECT_EQ(j["reports"][0]["org"], xml_org(xml)) << name;
    EXPECT_EQ(j["totals"]["messages"], xml_message_count(xml)) << name;
    ++checked;
  }
  EXPECT_GE(checked, 10U);
}

TEST_F(DmarcCli, WholeFolderBadFilesNamedAndSkipped) {
  std::uint64_t files = 0;
  for (const auto& e : fs::directory_iterator(aggregate_dir())) files += e.is_regular_file() ? 1 : 0;
  const auto r = run({"dmarc", "--json", aggregate_dir().string()});
  EXPECT_EQ(r.status, 1);
  for (const auto& b : kBad) EXPECT_NE(r.err.find(b), std::string::npos) << b << "\n" << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["totals"]["bad"], kBad.size());
  EXPECT_EQ(j["reports"].size(), files - kBad.size());
  // The sources table accounts for every message of every report.
  std::uint64_t by_report = 0;
  std::uint64_t by_source = 0;
  for (const auto& rep : j["reports"]) by_report += rep["messages"].get<std::uint64_t>();
  for (const auto& src : j["sources"]) by_source += src["messages"].get<std::uint64_t>();
  EXPECT_EQ(by_report, j["totals"]["messages"].get<std::uint64_t>());
  EXPECT_EQ(by_source, by_report);
  EXPECT_GT(by_report, 2000U);  // the large example.com report alone has 2286
}

TEST_F(DmarcCli, GoodFilesOnlyExitZero) {
  const auto r = run({"dmarc", (aggregate_dir() / "rfc9990-sample.xml").string(),
                      (aggregate_dir() / "google-borschow.com-949348866075514174.eml").string()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_NE(r.out.find("Reports (2)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Sample Reporter"), std::string::npos);
  EXPECT_NE(r.out.find("92.53.116.102"), std::string::npos);
}

TEST_F(DmarcCli, Filters) {
  auto reports = [&](std::vector<std::string> args) {
    args.push_back(aggregate_dir().string());
    std::vector<std::string> orgs;
    const auto j = run_json(args, 1);
    for (const auto& rep : j["reports"]) orgs.push_back(rep["org"]);
    return orgs;
  };
  EXPECT_EQ(reports({"--view", "reports", "--reporter", "GOOGLE"}),
            (std::vector<std::string>{"google.com", "google.com"}));
  EXPECT_EQ(reports({"--view", "reports", "--domain", "borschow.com"}),
            (std::vector<std::string>{"google.com"}));
  EXPECT_EQ(reports({"--view", "reports", "--since", "2024-01-01"}).size(), 3U);
  EXPECT_EQ(reports({"--view", "reports", "--since", "2018-06-19", "--until", "2018-06-19"}),
            (std::vector<std::string>{"example.net"}));
  const auto j = run_json({"--domain", "nowhere.example", aggregate_dir().string()}, 1);
  EXPECT_EQ(j["reports"].size(), 0U);
  EXPECT_GT(j["totals"]["filtered"].get<int>(), 10);
}

TEST_F(DmarcCli, CsvSources) {
  const auto r = run({"dmarc", "--csv", "--view", "sources",
                      (aggregate_dir() / "google-borschow.com-949348866075514174.eml").string()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "source_ip,header_from,disposition,dkim,spf,messages,reports\r\n"
            "92.53.116.102,borschow.com,reject,fail,fail,1,1\r\n");
}

TEST_F(DmarcCli, UsageErrors) {
  EXPECT_EQ(run({"dmarc", "--since", "yesterday", aggregate_dir().string()}).status, 64);
  EXPECT_EQ(run({"dmarc", "--view", "everything", aggregate_dir().string()}).status, 64);
  EXPECT_EQ(run({"dmarc", "--json", "--csv", aggregate_dir().string()}).status, 64);
  // No files and no configuration: nothing to read.
  EXPECT_EQ(run({"dmarc"}).status, 78);
}

// A Maildir as service-mail files it: Reports.New read by default, another folder on request.
TEST_F(DmarcCli, ReadsMaildirFolders) {
  const fs::path maildir = dir_ / "Maildir";
  for (const char* sub : {"cur", "new", "tmp"}) {
    fs::create_directories(maildir / sub);
    fs::create_directories(maildir / ".Reports.New" / sub);
    fs::create_directories(maildir / ".Reports.Invalid" / sub);
  }
  fs::copy_file(aggregate_dir() / "google-borschow.com-949348866075514174.eml",
                maildir / ".Reports.New" / "new" / "1700000000.M1P1.host,S=100");
  fs::copy_file(aggregate_dir() / "twilight.eml",
                maildir / ".Reports.New" / "cur" / "1700000001.M2P1.host,S=100:2,S");
  fs::copy_file(aggregate_dir() / "invalid_xml.xml",
                maildir / ".Reports.Invalid" / "new" / "1700000002.M3P1.host,S=1");
  const fs::path conf = dir_ / "chainmail.conf";
  std::ofstream(conf) << "[directory]\nldif_file = \"/dev/null\"\n[dmarc_reports]\nmaildir = \""
                      << maildir.string() << "\"\n";

  const auto j = run_json({"--config", conf.string()}, 0);
  EXPECT_EQ(j["reports"].size(), 2U);
  EXPECT_EQ(j["totals"]["bad"], 0);

  const auto r =
      run({"dmarc", "--config", conf.string(), "--folder", "Reports.Invalid", "--folder", "Reports.New"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("1700000002.M3P1"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("Reports (2)"), std::string::npos) << r.out;

  // --maildir overrides the configured one.
  const auto empty = run_json({"--config", conf.string(), "--maildir", (dir_ / "nowhere").string()}, 1);
  EXPECT_EQ(empty["reports"].size(), 0U);

  // INBOX is the Maildir's root; a name that is not a Maildir++ folder is a usage error, not a path.
  const auto inbox = run({"dmarc", "--config", conf.string(), "--folder", "INBOX"});
  EXPECT_EQ(inbox.status, 0) << inbox.err;
  EXPECT_NE(inbox.out.find("Reports (0)"), std::string::npos) << inbox.out;
  for (const char* bad : {"../Maildir/.Reports.New", ".Reports.New", "Reports..New"}) {
    const auto refused = run({"dmarc", "--config", conf.string(), "--folder", bad});
    EXPECT_EQ(refused.status, 64) << bad;
    EXPECT_NE(refused.err.find("not a Maildir++ folder name"), std::string::npos) << refused.err;
    EXPECT_TRUE(refused.out.empty()) << refused.out;
  }
}

// A report in an encoding glibc's iconv does not know is converted by ICU, which the static command loads the
// first time libxml2 asks for it (cli/libxml2_backends.cc): SCSU's byte 0xE9 is U+00E9 in its default window.
// A document that does not convert is the file's error, with ICU's reason.
TEST_F(DmarcCli, ReportsInEncodingsOnlyIcuConverts) {
  const std::string report =
      "<feedback><report_metadata><org_name>Caf\xE9 Mail</org_name><email>a@example.net</email>"
      "<report_id>scsu-1</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>"
      "</report_metadata><policy_published><domain>example.org</domain><p>none</p></policy_published>"
      "<record><row><source_ip>192.0.2.1</source_ip><count>7</count><policy_evaluated>"
      "<disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>"
      "<identifiers><header_from>example.org</header_from></identifiers><auth_results><spf>"
      "<domain>example.org</domain><result>fail</result></spf></auth_results></record></feedback>\n";
  const fs::path scsu = dir_ / "scsu.xml";
  std::ofstream(scsu, std::ios::binary) << "<?xml version=\"1.0\" encoding=\"SCSU\"?>\n" << report;
  const auto json = run_json({scsu.string()}, 0);
  ASSERT_EQ(json["reports"].size(), 1U) << json.dump();
  EXPECT_EQ(json["reports"][0]["org"], "Caf\u00e9 Mail");
  EXPECT_EQ(json["totals"]["messages"], 7);

  const fs::path bocu = dir_ / "bocu.xml";
  std::ofstream(bocu, std::ios::binary) << "<?xml version=\"1.0\" encoding=\"BOCU-1\"?>\n" << report;
  const auto bad = run({"dmarc", bocu.string()});
  EXPECT_EQ(bad.status, 1) << bad.err;
  EXPECT_NE(bad.err.find("bocu.xml: input conversion failed"), std::string::npos) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
}

// The command links neither OpenLDAP nor GMime (start-up cost: see cli/module_loader.h); it loads
// chainmail-directory and chainmail-mime from ../lib/chainmail when a subcommand needs them, and says which
// file is missing when one is.
TEST_F(DmarcCli, ModulesAreLoadedOnlyWhenNeeded) {
  const std::string readelf = "readelf -d " + quote(CHAINMAIL_BIN) + " 2>&1";
  std::string needed;
  if (FILE* p = ::popen(readelf.c_str(), "r")) {
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr) needed += buf.data();
    ASSERT_EQ(::pclose(p), 0) << needed;
  }
  ASSERT_NE(needed.find("(NEEDED)"), std::string::npos) << needed;
  for (const char* lib :
       {"libldap", "libsasl2", "libgnutls", "libgmime", "libglib", "libgpgme", "libarchive"})
    EXPECT_EQ(needed.find(lib), std::string::npos) << lib << " is linked into the command:\n" << needed;
  // CHAINMAIL_STATIC_COMMAND (cli/CMakeLists.txt): libxml2 and its libraries, and outside sanitizer builds
  // the C++ runtime, are linked in.
  if (CHAINMAIL_STATIC_LIBXML2) {
    for (const char* lib : {"libxml2", "libicu", "liblzma", "libz."})
      EXPECT_EQ(needed.find(lib), std::string::npos) << lib << " is a shared library of the command:\n"
                                                     << needed;
  }
  if (CHAINMAIL_STATIC_CXX_RUNTIME) {
    for (const char* lib : {"libstdc++", "libgcc_s", "libm."})
      EXPECT_EQ(needed.find(lib), std::string::npos) << lib << " is a shared library of the command:\n"
                                                     << needed;
  }

  // The modules work from the build tree: a message (GMime), gzip and zip reports (libarchive) and a route
  // (OpenLDAP, here an LDIF directory).
  const fs::path eml = aggregate_dir() / "google-borschow.com-949348866075514174.eml";
  ASSERT_TRUE(fs::exists(eml)) << eml;
  EXPECT_EQ(run({"dmarc", eml.string()}).status, 0);
  const fs::path gz = aggregate_dir() / "fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz";
  const fs::path zip =
      aggregate_dir() / "estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip";
  ASSERT_TRUE(fs::exists(gz) && fs::exists(zip));
  const auto archives = run({"dmarc", gz.string(), zip.string()});
  EXPECT_EQ(archives.status, 0) << archives.err;
  EXPECT_NE(archives.out.find("2 files, 2 reports"), std::string::npos) << archives.out;
  const fs::path conf = dir_ / "chainmail.conf";
  std::ofstream(conf) << "[directory]\nldif_file = \"/dev/null\"\n";
  EXPECT_EQ(run({"route", "--config", conf.string(), "nobody@example.org"}).status, 1);

  // A copy of the command without its modules: XML report files still read; messages, compressed reports and
  // routes say why not.
  fs::create_directories(dir_ / "bin");
  fs::copy_file(CHAINMAIL_BIN, dir_ / "bin" / "chainmail");
  const fs::path lone = dir_ / "bin" / "chainmail";
  EXPECT_EQ(run_binary(lone, {"dmarc", (aggregate_dir() / "empty_reason.xml").string()}).status, 0);
  const auto message = run_binary(lone, {"dmarc", eml.string()});
  EXPECT_EQ(message.status, 1);
  EXPECT_NE(message.err.find("mail messages cannot be read"), std::string::npos) << message.err;
  EXPECT_NE(message.err.find("chainmail-mime.so"), std::string::npos) << message.err;
  const auto compressed = run_binary(lone, {"dmarc", gz.string()});
  EXPECT_EQ(compressed.status, 1);
  EXPECT_NE(compressed.err.find("compressed reports cannot be read"), std::string::npos) << compressed.err;
  EXPECT_NE(compressed.err.find("chainmail-archive.so"), std::string::npos) << compressed.err;
  const auto route = run_binary(lone, {"route", "--config", conf.string(), "nobody@example.org"});
  EXPECT_EQ(route.status, 69) << route.err;  // EX_UNAVAILABLE
  EXPECT_NE(route.err.find("chainmail-directory.so"), std::string::npos) << route.err;
}

}  // namespace
