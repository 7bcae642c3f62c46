// report_archive_fuzz.cc - report archives (adapters/mime/report_archive.h) on any bytes: a gzip, zip or
// plain report comes out within the cap, or is refused with a reason; nothing crashes or overflows.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "adapters/mime/report_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  chainmail::ArchiveLimits limits;
  limits.max_bytes = std::size_t{1} << 20;  // small, so that bombs are met and stopped quickly
  limits.max_members = 4;
  const auto r =
      chainmail::extract_report(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (r.ok() ? r.xml->size() > limits.max_bytes : r.error.empty()) std::abort();
  return 0;
}
