// report_archive.cc - see report_archive.h. libarchive reads from memory; data is pulled in 64 KiB blocks
// and counted against the cap before it is kept.
#include "adapters/mime/report_archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <array>
#include <memory>

namespace chainmail {
namespace {

struct FreeArchive {
  void operator()(archive* a) const { archive_read_free(a); }
};
using Archive = std::unique_ptr<archive, FreeArchive>;

bool ends_with_xml(std::string_view name) {
  if (name.size() < 4) return false;
  const auto ext = name.substr(name.size() - 4);
  return ext[0] == '.' && (ext[1] | 0x20) == 'x' && (ext[2] | 0x20) == 'm' && (ext[3] | 0x20) == 'l';
}

std::string archive_message(archive* a, std::string_view fallback) {
  const char* m = archive_error_string(a);
  return m != nullptr ? std::string(m) : std::string(fallback);
}

// Reads the current entry's data into `out`, counting against `budget` as it goes.
bool read_data(archive* a, std::string& out, std::size_t& budget, std::string& error) {
  std::array<char, std::size_t{64} * 1024> block{};
  for (;;) {
    const la_ssize_t n = archive_read_data(a, block.data(), block.size());
    if (n == 0) return true;
    if (n < 0) {
      error = archive_message(a, "corrupt archive data");
      return false;
    }
    const auto got = static_cast<std::size_t>(n);
    if (got > budget) {
      error = "decompressed size over the limit";
      return false;
    }
    budget -= got;
    out.append(block.data(), got);
  }
}

ExtractResult fail(std::string why) {
  return {std::nullopt, std::move(why)};
}

ExtractResult gunzip(std::string_view data, const ArchiveLimits& limits) {
  Archive a(archive_read_new());
  if (!a) return fail("out of memory");
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK)
    return fail(archive_message(a.get(), "not gzip data"));
  archive_entry* entry = nullptr;
  if (archive_read_next_header(a.get(), &entry) != ARCHIVE_OK)
    return fail(archive_message(a.get(), "not gzip data"));
  // The raw format takes anything: without this check, bytes gzip cannot read would pass through unchanged.
  if (archive_filter_code(a.get(), 0) != ARCHIVE_FILTER_GZIP) return fail("gzip: not gzip data");
  std::string out;
  std::size_t budget = limits.max_bytes;
  std::string error;
  if (!read_data(a.get(), out, budget, error)) return fail("gzip: " + error);
  return {std::move(out), {}};
}

ExtractResult unzip(std::string_view data, const ArchiveLimits& limits) {
  Archive a(archive_read_new());
  if (!a) return fail("out of memory");
  archive_read_support_format_zip(a.get());
  if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK)
    return fail(archive_message(a.get(), "not zip data"));
  std::size_t budget = limits.max_bytes;
  std::size_t members = 0;
  std::optional<std::string> xml_member;
  std::optional<std::string> first_member;
  std::size_t regular = 0;
  archive_entry* entry = nullptr;
  for (;;) {
    const int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      return fail("zip: " + archive_message(a.get(), "corrupt zip"));
    if (++members > limits.max_members) {
      return fail("zip: more than " + std::to_string(limits.max_members) + " members");
    }
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    ++regular;
    const char* name = archive_entry_pathname(entry);
    // Every regular member is read (and counted), so the total cap holds whichever member is the report.
    std::string content;
    std::string error;
    if (!read_data(a.get(), content, budget, error)) return fail("zip: " + error);
    if (name != nullptr && ends_with_xml(name)) {
      if (xml_member) return fail("zip: more than one .xml member");
      xml_member = std::move(content);
    } else if (regular == 1) {
      first_member = std::move(content);
    }
  }
  if (xml_member) return {std::move(xml_member), {}};
  if (regular == 1 && first_member) return {std::move(first_member), {}};
  return fail(regular == 0 ? "zip: no report member" : "zip: several members and none named .xml");
}

}  // namespace

ExtractResult extract_report(std::string_view data, const ArchiveLimits& limits) noexcept {
  try {
    switch (detect_report_encoding(data)) {
      case ReportEncoding::Gzip:
        return gunzip(data, limits);
      case ReportEncoding::Zip:
        return unzip(data, limits);
      case ReportEncoding::Plain:
        break;
    }
    if (data.size() > limits.max_bytes) return fail("report larger than the limit");
    return {std::string(data), {}};
  } catch (...) {
    return {std::nullopt, "out of memory"};
  }
}

}  // namespace chainmail
