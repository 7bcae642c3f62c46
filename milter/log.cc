// log.cc - see log.h.
#include "milter/log.h"

#include <syslog.h>
#include <unistd.h>

#include "core/route_format.h"

namespace chainmail::milter {

Log::Log(Sink sink) : sink_(sink) {
  if (sink_ == Sink::syslog) openlog("chainmail-milter", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

Log::~Log() {
  if (sink_ == Sink::syslog) closelog();
}

void Log::write(Level level, std::string_view line) const {
  if (sink_ == Sink::syslog) {
    const int priority = level == Level::error ? LOG_ERR : level == Level::warning ? LOG_WARNING : LOG_INFO;
    syslog(priority, "%.*s", static_cast<int>(line.size()), line.data());
    return;
  }
  std::string out = "chainmail-milter: ";
  if (level == Level::error) out += "error: ";
  if (level == Level::warning) out += "warning: ";
  out += line;
  out += '\n';
  // One write per line; a short write to stderr is not worth retrying for a log.
  [[maybe_unused]] const auto n = ::write(STDERR_FILENO, out.data(), out.size());
}

std::string untrusted(std::string_view text, std::size_t max) {
  const bool cut = text.size() > max;
  std::string out = sanitize(text.substr(0, max));
  if (cut) out += "...";
  return out;
}

}  // namespace chainmail::milter
