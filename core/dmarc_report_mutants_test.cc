// dmarc_report_mutants_test.cc - reports damaged at random (seeded, so every run reads the same mutants):
// whatever the damage, each way of reading a document (the split parse with its two halves run in any
// order, the document read piece by piece through a callback in halves or by one parser, a tally instead
// of kept records) gives the serial parse's verdict, error text and records, or leaves the document to it.
// The generated documents and the real corpus are broken where the split machinery is most delicate: at
// and around the cut (the first "<record>" from the middle on), with the markup that could fool it.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/dmarc_report.h"
#include "core/dmarc_report_test_support.h"

namespace chainmail {
namespace {

using namespace report_test;  // NOLINT(google-build-using-namespace): the shared helpers of these tests

// What is inserted: markup that opens or closes a record, hides one (comments, CDATA, a processing
// instruction), entities (refused or predefined), a DOCTYPE, a NUL byte and a broken UTF-8 sequence.
constexpr std::array<std::string_view, 17> kInserts{
    "<record>",    "</record>",    "<!--",         "-->",    "<![CDATA[",
    "]]>",         "<?pi x?>",     "&amp;",        "&ent;",  "<!DOCTYPE x>",
    "</feedback>", "<feedback>",   "<row><count>", "</row>", std::string_view("\0", 1),
    "\xC3",        "<record><row>"};
// Well-formed between two records, each with a "<record>" the cut must not be fooled by.
constexpr std::array<std::string_view, 4> kHarmless{"<!-- <record> -->\n", "<?pi <record>?>", "\n  \n",
                                                    "<!--</record><record>-->"};
constexpr std::string_view kBytes{"<>/&;\"'] \n\tax0\xFF"};

class Mutator {
 public:
  explicit Mutator(unsigned seed) : rng_(seed) {}

  // One to three changes, half of them within 2 KB of the middle, where the document is cut. Half the
  // changes keep the document well-formed (markup that hides a record, or a record repeated, at a record's
  // start), so that many mutants are still read, and cut, all the way through.
  std::string mutate(std::string doc) {
    const int changes = pick(0, 2) == 0 ? pick(2, 3) : 1;
    for (int i = 0; i < changes && !doc.empty(); ++i) {
      const std::size_t at = where(doc.size());
      switch (pick(0, 5)) {
        case 0:  // one byte replaced
          doc[std::min(at, doc.size() - 1)] = kBytes[static_cast<std::size_t>(pick(0, kBytes.size() - 1))];
          break;
        case 1:  // a run deleted
          doc.erase(at, static_cast<std::size_t>(pick(1, 40)));
          break;
        case 2:  // markup inserted anywhere
          doc.insert(at, kInserts[static_cast<std::size_t>(pick(0, kInserts.size() - 1))]);
          break;
        case 3: {  // a slice repeated elsewhere (half a record, a tag cut in two)
          const std::string slice = doc.substr(where(doc.size()), static_cast<std::size_t>(pick(1, 600)));
          doc.insert(at, slice);
          break;
        }
        default: {  // at a record's start: markup that hides a record, or a whole record again
          const std::size_t start = doc.find("<record>", at);
          if (start == std::string::npos) break;
          const std::size_t end = doc.find("</record>", start);
          if (pick(0, 1) == 0 && end != std::string::npos) {
            doc.insert(start, doc.substr(start, end + 9 - start));
          } else {
            doc.insert(start, kHarmless[static_cast<std::size_t>(pick(0, kHarmless.size() - 1))]);
          }
          break;
        }
      }
    }
    return doc;
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  int pick(int lo, std::size_t hi) { return pick(lo, static_cast<int>(hi)); }
  std::size_t where(std::size_t size) {
    if (pick(0, 1) == 0) return std::uniform_int_distribution<std::size_t>(0, size)(rng_);
    const std::size_t middle = size / 2;
    const std::size_t lo = middle > 2048 ? middle - 2048 : 0;
    return std::uniform_int_distribution<std::size_t>(lo, std::min(size, middle + 2048))(rng_);
  }

  std::mt19937 rng_;
};

struct Tally {
  int valid = 0;
  int invalid = 0;
  int merged = 0;  // cut in halves, read piece by piece, and merged
};

// Every path against the serial parse; the paths the document took are counted.
void expect_every_path_as_serial(const std::string& name, const std::string& xml,
                                 const ReportParseLimits& limits, Tally& seen) {
  const auto serial = parse_aggregate_report(xml, limits);
  ++(serial.ok() ? seen.valid : seen.invalid);
  for (const Runner run : kRunners) {
    ReportSplit path = ReportSplit::none;
    const auto split = parse_aggregate_report(xml, limits, run, 1, &path);
    EXPECT_TRUE(split == serial) << name << ": serial " << describe(serial) << ", split " << describe(split);

    Reads reads(xml);
    const auto at = parse_aggregate_report_at(xml.size(), reads.read_at(), limits, run, 1, &path);
    if (at) {
      EXPECT_EQ(path, ReportSplit::merged) << name;
      EXPECT_TRUE(*at == serial) << name << ": serial " << describe(serial) << ", read piece by piece "
                                 << describe(*at);
      if (run == &in_turn) ++seen.merged;
    }

    KeepingTally tally;
    Reads counted_reads(xml);
    const auto counted =
        parse_aggregate_report_at(xml.size(), counted_reads.read_at(), limits, run, 1, &path, &tally);
    if (counted) {
      expect_tally_as_serial(name + ", read piece by piece", serial, *counted, tally);
    } else {
      EXPECT_TRUE(tally.records.empty()) << name << ": counted, then left to the caller";
    }
  }
  expect_streamed_as_serial(name, xml, limits, serial);
}

unsigned env_number(const char* name, unsigned fallback) {
  const char* text = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read before any thread starts
  return text != nullptr && *text != '\0' ? static_cast<unsigned>(std::strtoul(text, nullptr, 10)) : fallback;
}

std::vector<std::string> corpus_reports(std::size_t how_many) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(CHAINMAIL_DMARC_SAMPLES)) {
    if (e.is_regular_file() && e.path().extension() == ".xml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());  // the same documents, in the same order, on every machine
  std::vector<std::string> out;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Small ones (the large sample would take most of the test's time under the sanitizers).
    if (xml.size() > 1024 && xml.size() < std::size_t{16} * 1024 && parse_aggregate_report(xml).ok())
      out.push_back(std::move(xml));
    if (out.size() == how_many) break;
  }
  return out;
}

TEST(DmarcReportMutants, EveryPathGivesTheSerialVerdict) {
  // CHAINMAIL_MUTANTS and CHAINMAIL_MUTANT_SEED set more, or other, mutants: a longer search, by hand.
  const unsigned kSeed = env_number("CHAINMAIL_MUTANT_SEED", 20261127);
  const int kMutants = static_cast<int>(env_number("CHAINMAIL_MUTANTS", 400));
  std::vector<std::string> bases = corpus_reports(4);
  ASSERT_GE(bases.size(), 2U);
  bases.push_back(Doc(12).str());
  bases.push_back(Doc(40).str());
  ReportParseLimits without_details;
  without_details.keep_record_details = false;

  Mutator mutator(kSeed);
  Tally seen;
  for (int i = 0; i < kMutants; ++i) {
    const std::string mutant = mutator.mutate(bases[static_cast<std::size_t>(i) % bases.size()]);
    const std::string name = "mutant " + std::to_string(i) + " (seed " + std::to_string(kSeed) + ")";
    expect_every_path_as_serial(name, mutant, i % 2 == 0 ? ReportParseLimits{} : without_details, seen);
    if (HasFailure()) break;  // the first mutant that breaks a path is enough to reproduce
  }
  RecordProperty("valid", seen.valid);
  RecordProperty("invalid", seen.invalid);
  RecordProperty("merged", seen.merged);
  // The mutants are not all broken, nor all harmless, and many are still cut in halves: a test that did
  // not reach the split machinery would pass without testing it.
  EXPECT_GE(seen.valid, kMutants / 10);
  EXPECT_GE(seen.invalid, kMutants / 10);
  EXPECT_GE(seen.merged, kMutants / 10);
}

}  // namespace
}  // namespace chainmail
