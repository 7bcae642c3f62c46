// report_message_fuzz.cc - mail sent to the DMARC report address (adapters/mime/report_parts.h), as
// service-mail reads it, on any bytes: classified, its report parts extracted and parsed; only an aggregate
// report has report parts, and nothing crashes or overflows.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "adapters/mime/from_header.h"
#include "adapters/mime/report_archive.h"
#include "adapters/mime/report_parts.h"
#include "core/dmarc_report.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool initialised = [] {
    chainmail::init_mime();
    return true;
  }();
  (void)initialised;
  const auto message =
      chainmail::classify_report_message(std::string_view(reinterpret_cast<const char*>(data), size));
  if (message.kind != chainmail::ReportKind::Aggregate && !message.reports.empty()) std::abort();
  chainmail::ArchiveLimits limits;
  limits.max_bytes = std::size_t{1} << 20;
  for (const auto& part : message.reports) {
    const auto xml = chainmail::extract_report(part.data, limits);
    if (xml.ok()) (void)chainmail::parse_aggregate_report(*xml.xml);
  }
  return 0;
}
