// report_archive_loader.cc - adapters/mime's extract_report() through the chainmail-archive module
// (report_archive_module.h), loaded at the first compressed report. The `chainmail` command links this file
// instead of the chainmail_archive library; tests and the module itself link the library.
#include <exception>
#include <string>

#include "cli/module_loader.h"
#include "cli/report_archive_module.h"

namespace chainmail {

ExtractResult extract_report(std::string_view data, const ArchiveLimits& limits) noexcept {
  try {
    std::string why;
    auto* entry = module_function<decltype(chainmail_extract_report)>("chainmail-archive",
                                                                      "chainmail_extract_report", why);
    if (entry == nullptr) return {std::nullopt, "compressed reports cannot be read: " + why};
    ExtractResult out;
    if (!entry(data.data(), data.size(), &limits, &out)) return {std::nullopt, "out of memory"};
    return out;
  } catch (...) {
    return {std::nullopt, "out of memory"};
  }
}

}  // namespace chainmail
