// report_message_loader.cc - see report_message.h: classify_message() through the chainmail-mime module,
// loaded on the first message (the `chainmail` command links this file instead of report_message.cc).
#include <exception>

#include "cli/module_loader.h"
#include "cli/report_message.h"

namespace chainmail {

bool classify_message(std::string_view message, ClassifiedMessage& out, std::string& why) noexcept {
  try {
    auto* entry = module_function<decltype(chainmail_classify_message)>("chainmail-mime",
                                                                        "chainmail_classify_message", why);
    if (entry == nullptr) {
      why = "mail messages cannot be read: " + why;
      return false;
    }
    return entry(message.data(), message.size(), &out, &why);
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    why = "cannot read the message";
  }
  return false;
}

}  // namespace chainmail
