// subprocess.h - runs a helper command for service-mail (exec services, autoreply.command, sendmail):
// argv without a shell, a given environment, data on its stdin, a deadline and an output cap.
//
// The child is the leader of its own process group; on timeout or output overflow the whole group is
// killed with SIGKILL, and after the leader exits whatever it left in its group is killed too, so neither a
// grandchild holding the pipe nor a slow command can hang the pipe(8) delivery. The child is always reaped
// (no zombie). Writing stdin never raises SIGPIPE in the caller: SIGPIPE is ignored while the command runs
// (the child gets the default disposition back) and a command that stops reading is not an error of ours.
// Not thread-safe (it changes the process's SIGPIPE disposition while it runs); service-mail is one thread.
//
// DIAGNOSTICS: CommandResult says how it ended: exited (with status), killed by a signal, timed out, too
// much output, or could not be started (with errno's text).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace chainmail {

struct CommandResult {
  enum class End { Exited, Signaled, TimedOut, OutputOverflow, NotStarted };
  End end = End::NotStarted;
  int status = -1;     // exit status (Exited) or signal number (Signaled)
  std::string output;  // stdout and stderr as they came, at most max_output bytes
  std::string error;   // NotStarted: why

  bool ok() const { return end == End::Exited && status == 0; }
  std::string describe() const;  // for the log line
};

struct CommandSpec {
  std::vector<std::string> argv;  // argv[0] is the program's absolute path
  std::vector<std::string> env;   // "NAME=value" entries; nothing else is inherited
  std::string_view input;         // written to stdin, then stdin is closed
  std::chrono::milliseconds timeout{10000};
  std::size_t max_output = 65536;
  // true: output past max_output kills the command (OutputOverflow); false: the rest is read and dropped.
  bool overflow_kills = true;
};

CommandResult run_command(const CommandSpec& spec);

}  // namespace chainmail
