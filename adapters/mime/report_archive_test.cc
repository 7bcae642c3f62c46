// report_archive_test.cc - reports out of gzip and zip, with the size and member caps enforced while reading.
#include "adapters/mime/report_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
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

}  // namespace
}  // namespace chainmail
