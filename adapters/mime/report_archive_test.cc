// report_archive_test.cc - reports out of gzip and zip, with the size and member caps enforced while reading.
#include "adapters/mime/report_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace chainmail {
namespace {

struct Member {
  std::string name;
  std::string data;
};

// An archive written by libarchive into memory: zip (deflate) or raw gzip.
std::string make_archive(const std::vector<Member>& members, bool zip) {
  std::vector<char> buf(8 << 20);
  std::size_t used = 0;
  std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(), archive_write_free);
  if (zip) {
    archive_write_set_format_zip(a.get());
  } else {
    archive_write_set_format_raw(a.get());
    archive_write_add_filter_gzip(a.get());
  }
  archive_write_open_memory(a.get(), buf.data(), buf.size(), &used);
  for (const auto& m : members) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), m.name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(m.data.size()));
    archive_write_header(a.get(), e.get());
    archive_write_data(a.get(), m.data.data(), m.data.size());
  }
  archive_write_close(a.get());
  return {buf.data(), used};
}

// gzip written by zlib: `level` 0 stores the bytes as they are, so that a test can change one of them.
std::string gzip(std::string_view data, int level = Z_DEFAULT_COMPRESSION) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(
      const_cast<char*>(data.data()));  // NOLINT(cppcoreguidelines-pro-type-const-cast): zlib only reads
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string xml_doc() {
  return "<?xml version=\"1.0\"?><feedback/>";
}

TEST(ReportArchive, RecognisesTheFormatFromTheBytes) {
  EXPECT_EQ(detect_report_encoding(make_archive({{"r.xml", xml_doc()}}, false)), ReportEncoding::Gzip);
  EXPECT_EQ(detect_report_encoding(make_archive({{"r.xml", xml_doc()}}, true)), ReportEncoding::Zip);
  EXPECT_EQ(detect_report_encoding(xml_doc()), ReportEncoding::Plain);
}

TEST(ReportArchive, ExtractsPlainGzipAndZip) {
  for (const auto& data :
       {xml_doc(), make_archive({{"r.xml", xml_doc()}}, false), make_archive({{"r.xml", xml_doc()}}, true),
        make_archive({{"README", "hi"}, {"report.XML", xml_doc()}}, true),
        make_archive({{"noext", xml_doc()}}, true)}) {
    const auto r = extract_report(data, {});
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(*r.xml, xml_doc());
  }
}

TEST(ReportArchive, EnforcesTheCapsWhileReading) {
  const std::string zeros(4 << 20, '\0');
  ArchiveLimits small;
  small.max_bytes = 1 << 20;
  for (const bool zip : {false, true}) {
    const auto bomb = make_archive({{"r.xml", zeros}}, zip);
    EXPECT_LT(bomb.size(), 64U * 1024U);
    const auto r = extract_report(bomb, small);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("limit"), std::string::npos) << r.error;
    EXPECT_TRUE(extract_report(bomb, {}).ok());  // the same data fits the default cap
  }
  // Spread over members, the total counts.
  const auto spread =
      make_archive({{"a.bin", zeros.substr(0, 700000)}, {"r.xml", zeros.substr(0, 700000)}}, true);
  EXPECT_FALSE(extract_report(spread, small).ok());
  ArchiveLimits few;
  few.max_members = 2;
  const auto many = make_archive({{"a", "1"}, {"b", "2"}, {"r.xml", xml_doc()}}, true);
  const auto r = extract_report(many, few);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("members"), std::string::npos) << r.error;
  EXPECT_FALSE(extract_report(std::string(2 << 20, 'x'), small).ok());
}

TEST(ReportArchive, RefusesTruncatedAndAmbiguousArchives) {
  const std::string big = xml_doc() + std::string(100000, ' ');
  const auto gz = make_archive({{"r.xml", big}}, false);
  const auto zip = make_archive({{"r.xml", big}}, true);
  EXPECT_FALSE(extract_report(gz.substr(0, gz.size() - 10), {}).ok());
  EXPECT_FALSE(extract_report(gz.substr(0, gz.size() / 2), {}).ok());
  EXPECT_FALSE(extract_report(zip.substr(0, zip.size() / 2), {}).ok());
  EXPECT_FALSE(extract_report(make_archive({{"a.xml", xml_doc()}, {"b.xml", xml_doc()}}, true), {}).ok());
  EXPECT_FALSE(extract_report(make_archive({{"a", xml_doc()}, {"b", xml_doc()}}, true), {}).ok());
  EXPECT_FALSE(extract_report("\x1f\x8bgarbage", {}).ok());
}

// A report damaged on its way (one byte changed in a stored gzip member: the data, the CRC-32, the length)
// is refused with zlib's reason; libarchive's gzip reader did not check the trailer, and read such a report
// with other numbers in it.
TEST(ReportArchive, RefusesGzipWhoseCheckDoesNotMatch) {
  const std::string xml = "<feedback><record><row><count>1</count></row></record></feedback>";
  const std::string gz = gzip(xml, 0);
  ASSERT_EQ(*extract_report(gz, {}).xml, xml);
  std::string digit = gz;
  digit[digit.find("<count>1") + 7] = '9';
  std::string crc = gz;
  crc[crc.size() - 8] = static_cast<char>(crc[crc.size() - 8] ^ 1);
  std::string length = gz;
  length[length.size() - 4] = static_cast<char>(length[length.size() - 4] ^ 1);
  for (const auto& [name, damaged, why] : {std::tuple{"a digit", digit, "incorrect data check"},
                                           std::tuple{"the CRC-32", crc, "incorrect data check"},
                                           std::tuple{"the length", length, "incorrect length check"}}) {
    const auto r = extract_report(damaged, {});
    EXPECT_FALSE(r.ok()) << name;
    EXPECT_NE(r.error.find(why), std::string::npos) << name << ": " << r.error;
  }
}

// gzip(1) writes one member per file it is given, and reads them back as one: so does extract_report().
// What follows the last member and does not start another is ignored, as gzip(1) ignores it.
TEST(ReportArchive, ReadsGzipMembersInTurn) {
  const std::string head = "<feedback><record>";
  const std::string tail = "</record></feedback>";
  const auto both = extract_report(gzip(head) + gzip(tail, 0), {});
  ASSERT_TRUE(both.ok()) << both.error;
  EXPECT_EQ(*both.xml, head + tail);
  const auto padded = extract_report(gzip(head + tail) + std::string(16, '\0'), {});
  ASSERT_TRUE(padded.ok()) << padded.error;
  EXPECT_EQ(*padded.xml, head + tail);
  // A second member cut short is a truncated archive.
  const std::string second = gzip(tail);
  const auto cut = extract_report(gzip(head) + second.substr(0, second.size() - 4), {});
  EXPECT_FALSE(cut.ok());
  EXPECT_NE(cut.error.find("truncated"), std::string::npos) << cut.error;
  // Over the cap across members too.
  ArchiveLimits small;
  small.max_bytes = head.size() + 3;
  EXPECT_FALSE(extract_report(gzip(head) + gzip(tail), small).ok());
}

// Every single byte of a gzip or zip report changed, in turn, to another value: the report comes out whole
// and unchanged, or not at all (or, with its magic number changed, as the bytes it now is). Never other
// numbers, whatever byte was hit (header, data, check, directory).
TEST(ReportArchive, DamagedArchivesAreRefusedNotMisread) {
  std::string xml = "<?xml version=\"1.0\"?>\n<feedback>\n";
  for (int i = 0; i < 40; ++i)
    xml += "<record><row><count>" + std::to_string(i) + "</count></row></record>\n";
  xml += "</feedback>\n";
  std::mt19937 rng(20261127);  // the same changes on every run
  int refused = 0;
  int unchanged = 0;
  for (const auto& archive : {gzip(xml), gzip(xml, 0), make_archive({{"r.xml", xml}}, true)}) {
    for (std::size_t at = 0; at < archive.size(); ++at) {
      std::string damaged = archive;
      damaged[at] = static_cast<char>(damaged[at] ^ std::uniform_int_distribution<int>(1, 255)(rng));
      // A changed magic number makes it no archive: passed on as it is, for the XML parser to refuse.
      if (detect_report_encoding(damaged) == ReportEncoding::Plain) continue;
      const auto r = extract_report(damaged, {});
      if (!r.ok()) {
        ++refused;
        continue;
      }
      ++unchanged;
      ASSERT_EQ(*r.xml, xml) << "byte " << at << " of " << archive.size() << " changed, read as other data";
    }
  }
  EXPECT_GT(refused, unchanged);  // most bytes matter
  RecordProperty("refused", refused);
  RecordProperty("unchanged", unchanged);
}

}  // namespace
}  // namespace chainmail
