// report_message.cc - see report_message.h: the direct implementation (linked into the tests and into the
// chainmail-mime module).
#include "cli/report_message.h"

#include <exception>

#include "adapters/mime/from_header.h"

namespace chainmail {

bool classify_message(std::string_view message, ClassifiedMessage& out, std::string& why) noexcept {
  try {
    init_mime();
    out = classify_report_message(message);
    return true;
  } catch (const std::exception& e) {
    why = std::string("cannot read the message: ") + e.what();
  } catch (...) {
    why = "cannot read the message";
  }
  return false;
}

}  // namespace chainmail

// Exported from the module; the rest of it is hidden (CMake: visibility hidden, --exclude-libs).
extern "C" __attribute__((visibility("default"))) bool chainmail_classify_message(
    const char* data, std::size_t size, chainmail::ClassifiedMessage* out, std::string* why) noexcept {
  return chainmail::classify_message(std::string_view(data, size), *out, *why);
}
