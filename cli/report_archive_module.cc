// report_archive_module.cc - the module chainmail-archive (see report_archive_module.h).
#include "cli/report_archive_module.h"

#include <string_view>

extern "C" __attribute__((visibility("default"))) bool chainmail_extract_report(
    const char* data, std::size_t size, const chainmail::ArchiveLimits* limits,
    chainmail::ExtractResult* out) noexcept {
  try {
    *out = chainmail::extract_report(std::string_view(data, size), *limits);
    return true;
  } catch (...) {
    return false;
  }
}
