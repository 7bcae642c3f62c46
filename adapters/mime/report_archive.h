// report_archive.h - the XML inside a DMARC report attachment: .xml as is, .xml.gz (gzip, via zlib) or .zip
// (via libarchive).
//
// Reporters send aggregate reports raw, gzipped or zipped, whatever the file name or content type says; the
// format is recognised from the bytes themselves (gzip and zip magic numbers), never from the name.
//
// SECURITY: the archive is attacker data. The decompressed size is counted while reading, chunk by chunk, and
// reading stops as soon as it passes max_bytes (all members together), so a zip or gzip bomb costs at most
// max_bytes of memory and the time to inflate that much. Zip members are counted while listing and capped.
// Member names are never used as paths: nothing is written to disk. Damaged data is refused, not read with
// other numbers in it: each gzip member's CRC-32 and length and each zip member's CRC-32 are checked.
//
// DIAGNOSTICS: a refusal carries a short reason (zlib's or libarchive's message, or the limit passed).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace chainmail {

struct ArchiveLimits {
  std::size_t max_bytes = 32 << 20;  // decompressed bytes, all members together
  std::size_t max_members = 16;      // zip entries, directories included
};

enum class ReportEncoding { Plain, Gzip, Zip };

// Inline: programs that only need to know (`chainmail dmarc` before it loads its archive module) must not
// link libarchive for it.
inline ReportEncoding detect_report_encoding(std::string_view data) {
  if (data.starts_with("\x1f\x8b")) return ReportEncoding::Gzip;
  if (data.starts_with("PK\x03\x04") || data.starts_with("PK\x05\x06")) return ReportEncoding::Zip;
  return ReportEncoding::Plain;
}

struct ExtractResult {
  std::optional<std::string> xml;  // the report document
  std::string error;               // set exactly when xml is empty: truncated, corrupt, over a limit
  bool ok() const { return xml.has_value(); }
};

// The report document inside `data`. A zip must hold exactly one regular file ending in .xml (or exactly one
// regular file); plain data is returned as is when it fits max_bytes. Never throws.
ExtractResult extract_report(std::string_view data, const ArchiveLimits& limits) noexcept;

}  // namespace chainmail
