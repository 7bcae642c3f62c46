// report_archive.cc - see report_archive.h. zlib (gzip) and libarchive (zip) read from memory; data is
// pulled in 64 KiB blocks and counted against the cap before it is kept.
#include "adapters/mime/report_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include <array>
#include <limits>
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

struct EndInflate {
  void operator()(z_stream* z) const { inflateEnd(z); }
};

// gzip through zlib itself, not libarchive: libarchive's gzip reader does not check a member's trailer
// (its consume_trailer(): "XXX TODO: Verify the length and CRC"), so a report damaged on its way would be
// read with other numbers in it. zlib checks each member's CRC-32 and length. Members follow one another
// (gzip(1) writes one per file it was given); bytes after the last that do not start another member are
// ignored, as gzip(1) and libarchive ignore them: what was read has been checked.
ExtractResult gunzip(std::string_view data, const ArchiveLimits& limits) {
  if (data.size() > std::numeric_limits<uInt>::max()) return fail("gzip: data too large");
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return fail("gzip: out of memory");  // 15 + 16: a gzip wrapper
  const std::unique_ptr<z_stream, EndInflate> end(&z);
  // zlib's input pointer is not const, but inflate() never writes through it.
  z.next_in = reinterpret_cast<Bytef*>(
      const_cast<char*>(data.data()));  // NOLINT(cppcoreguidelines-pro-type-const-cast)
  z.avail_in = static_cast<uInt>(data.size());
  std::array<char, std::size_t{64} * 1024> block{};
  std::string out;
  std::size_t budget = limits.max_bytes;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(block.data());
    z.avail_out = static_cast<uInt>(block.size());
    const int rc = inflate(&z, Z_NO_FLUSH);
    const std::size_t got = block.size() - z.avail_out;
    if (got > budget) return fail("gzip: decompressed size over the limit");
    budget -= got;
    out.append(block.data(), got);
    if (rc == Z_OK) continue;
    if (rc == Z_STREAM_END) {
      if (z.avail_in < 2 || z.next_in[0] != 0x1f || z.next_in[1] != 0x8b) return {std::move(out), {}};
      if (inflateReset(&z) != Z_OK) return fail("gzip: cannot read the next member");
      continue;
    }
    // Z_BUF_ERROR: no progress, and output room was given, so the input ended inside a member.
    if (rc == Z_BUF_ERROR) return fail("gzip: truncated (the data ends inside the stream)");
    if (rc == Z_MEM_ERROR) return fail("out of memory");
    return fail(std::string("gzip: ") + (z.msg != nullptr ? z.msg : "corrupt data"));
  }
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
