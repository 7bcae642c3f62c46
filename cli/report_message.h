// report_message.h - the aggregate report parts of one mail message, for `chainmail dmarc`.
//
// classify_message() is adapters/mime's classify_report_message() (GMime). The `chainmail` command reaches
// it through the module chainmail-mime (module_loader.h: GMime and GLib are loaded only when a message is
// met, so report files never pay for them); the tests and the module itself link it directly. Which one a
// program gets is decided by what it links: report_message.cc (here) or report_message_loader.cc.
//
// DIAGNOSTICS: false and `why` when the message could not be read at all (the module missing, out of
// memory); a message that is simply not a report is a ClassifiedMessage of another kind.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "adapters/mime/report_parts.h"

namespace chainmail {

bool classify_message(std::string_view message, ClassifiedMessage& out, std::string& why) noexcept;

}  // namespace chainmail

// The module's entry point, the same function with C linkage so that it can be found by name.
extern "C" bool chainmail_classify_message(const char* data, std::size_t size,
                                           chainmail::ClassifiedMessage* out, std::string* why) noexcept;
