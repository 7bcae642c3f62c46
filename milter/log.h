// log.h - the milter's log: one line per event, to syslog (mail facility) or stderr.
//
// Every line is written with one call (syslog(3) or one write(2)), so lines from concurrent threads never
// interleave. Text that came from a client (addresses, HELO names, header values) must pass through
// untrusted() before it is logged: control and non-ASCII bytes become \xHH and it is cut at a bound, so a
// client can neither forge log lines nor flood them.
#pragma once

#include <string>
#include <string_view>

namespace chainmail::milter {

class Log {
 public:
  enum class Sink { syslog, stderr_ };
  enum class Level { error, warning, info };

  explicit Log(Sink sink);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  void write(Level level, std::string_view line) const;
  void error(std::string_view line) const { write(Level::error, line); }
  void warning(std::string_view line) const { write(Level::warning, line); }
  void info(std::string_view line) const { write(Level::info, line); }

 private:
  Sink sink_;
};

// Escaped and truncated client text; "…" (as "...") marks a cut.
std::string untrusted(std::string_view text, std::size_t max = 100);

}  // namespace chainmail::milter
