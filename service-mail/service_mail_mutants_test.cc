// service_mail_mutants_test.cc - report mail damaged at random (seeded: every run files the same
// mutants): whatever the damage to its MIME structure, headers, encodings or attachments, service-mail files
// the message whole into exactly one folder and exits 0, leaves nothing in tmp/, and files into Reports.New
// only what reads back as valid reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/mime/report_archive.h"
#include "adapters/mime/report_parts.h"
#include "core/dmarc_report.h"
#include "service-mail/service_mail.h"
#include "service-mail/test_support.h"

namespace chainmail {
namespace {

namespace fs = std::filesystem;
using namespace chainmail::testing;  // NOLINT(google-build-using-namespace): the shared test helpers

// What is put into a message: MIME structure (boundaries, part headers, blank lines), encodings (encoded
// words, base64 padding, quoted-printable soft breaks) and the bytes that end lines or strings.
constexpr std::array<std::string_view, 14> kMarkup{
    "\n--",
    "\n\n",
    "\nContent-Type: multipart/mixed; boundary=\"b\"\n",
    "\nContent-Transfer-Encoding: base64\n",
    "\nContent-Transfer-Encoding: quoted-printable\n",
    "\nContent-Type: application/gzip\nContent-Disposition: attachment; filename=\"r.xml.gz\"\n\n",
    "\nContent-Type: message/rfc822\n\n",
    "=?utf-8?b?",
    "==",
    "=\n",
    "\r\n",
    std::string_view("\0", 1),
    "\xFF\xFE",
    "\nSubject: DMARC failure report\n"};

// One to three changes to `message`: one byte replaced, a run deleted, markup inserted, a slice repeated.
std::string mutate(std::string message, std::mt19937& rng) {
  const auto pick = [&rng](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  for (std::size_t n = pick(1, 3); n > 0 && !message.empty(); --n) {
    const std::size_t at = pick(0, message.size() - 1);
    const std::size_t kind = pick(0, 3);
    if (kind == 0) message[at] = "\n-=:;\"<>/\r "[pick(0, 11)];
    if (kind == 1) message.erase(at, pick(1, 80));
    if (kind == 2) message.insert(at, kMarkup[pick(0, kMarkup.size() - 1)]);
    if (kind == 3) message.insert(at, message.substr(pick(0, message.size() - 1), pick(1, 400)));
  }
  return message;
}

// The samples as service-mail gets them: mail as it came (.eml), bare reports attached to a message.
std::vector<std::string> sample_messages() {
  const fs::path samples = CHAINMAIL_DMARC_SAMPLES;
  std::vector<fs::path> files;
  for (const char* sub : {"aggregate", "aggregate_invalid", "failure"}) {
    for (const auto& e : fs::directory_iterator(samples / sub)) {
      if (e.is_regular_file() && fs::file_size(e.path()) < std::uintmax_t{64} * 1024)
        files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());  // the same messages, in the same order, on every machine
  std::vector<std::string> out;
  for (const auto& f : files) {
    const std::string name = f.filename().string();
    std::string data = slurp(f);
    out.push_back(name.ends_with(".eml") ? data : report_message(name, content_type_for(name), data));
  }
  return out;
}

// Each report of a message in Reports.New reads back valid.
void expect_valid_reports(const std::string& name, const std::string& stored) {
  const auto again = classify_report_message(stored);
  ASSERT_EQ(again.kind, ReportKind::Aggregate) << name;
  for (const auto& part : again.reports) {
    const auto xml = extract_report(part.data, {});
    ASSERT_TRUE(xml.ok()) << name << ": " << xml.error;
    const auto report = parse_aggregate_report(*xml.xml);
    EXPECT_TRUE(report.ok()) << name << ": " << report.error;
  }
}

TEST(DmarcMutants, EveryMessageIsFiledWholeIntoOneFolder) {
  // CHAINMAIL_MUTANTS and CHAINMAIL_MUTANT_SEED set more, or other, mutants: a longer search, by hand.
  const char* seed_text = std::getenv("CHAINMAIL_MUTANT_SEED");  // NOLINT(concurrency-mt-unsafe): one thread
  const char* count_text = std::getenv("CHAINMAIL_MUTANTS");     // NOLINT(concurrency-mt-unsafe): one thread
  const auto kSeed =
      static_cast<unsigned>(seed_text != nullptr ? std::strtoul(seed_text, nullptr, 10) : 20261127);
  const auto kMutants = static_cast<int>(count_text != nullptr ? std::strtol(count_text, nullptr, 10) : 240);
  const auto bases = sample_messages();
  ASSERT_GE(bases.size(), 20U);
  const std::set<std::string> folders = {"Reports.New", "Reports.Invalid", "Failures", "INBOX"};
  std::mt19937 rng(kSeed);
  std::set<std::string> seen;
  for (int i = 0; i < kMutants; ++i) {
    const std::string message = mutate(bases[static_cast<std::size_t>(i) % bases.size()], rng);
    const std::string name = "mutant " + std::to_string(i) + " (seed " + std::to_string(kSeed) + ")";
    const auto dir = make_temp_dir();
    Config c = default_config();
    c.services = {{"dmarc", {"dmarc-reports:" + dir.string()}}};
    const auto out =
        run_service(c, {"r@reporter.example", "dmarc@service-mail.localhost", "", "Q1"}, message);
    ASSERT_EQ(out.exit_code, kExitOk) << name << ": " << out.detail;
    ASSERT_EQ(folders.count(out.folder), 1U) << name << ": " << out.folder;
    seen.insert(out.folder);
    const fs::path folder = out.folder == "INBOX" ? dir : dir / ("." + out.folder);
    const auto filed = files_in(folder / "new");
    ASSERT_EQ(filed.size(), 1U) << name;
    EXPECT_EQ(slurp(filed.front()), message) << name;  // whole, byte for byte
    EXPECT_TRUE(files_in(folder / "tmp").empty()) << name;
    if (out.folder == "Reports.New") expect_valid_reports(name, message);
    fs::remove_all(dir);
    if (HasFailure()) break;  // the first mutant that breaks a rule is enough to reproduce
  }
  // The damage reaches every outcome: a test whose mutants all went one way would not be testing much.
  EXPECT_EQ(seen, folders);
}

}  // namespace
}  // namespace chainmail
