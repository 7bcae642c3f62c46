// process.h: run real programs as children of the test process.
//
// Process: a long-running daemon (slapd -d, postfix start-fg, dovecot -F) whose stdout and stderr go to a log
// file. The test owns it: terminate() and the destructor always reap it, and the kernel kills it with SIGKILL
// if the test process dies first (PR_SET_PDEATHSIG), so no daemon outlives a crashed test (HOST-NOTES
// "Process hygiene": PID 1 reaps slowly here). The death signal follows the *thread* that spawned the child:
// spawn from the test's main thread or from a thread that lives as long as the daemon.
//
// run(): a short command (ldapsearch, postmap -q) with stdin fed from a string and both output streams
// captured, all three multiplexed with poll() so large outputs cannot deadlock; killed at the timeout.
//
// argv[0] is resolved with find_program() (PATH, then /usr/sbin and /sbin). extra_env entries are added to,
// or replace, the test process's environment.
//
// DIAGNOSTICS: spawning throws std::system_error when fork/exec fails (exec errors are passed back from the
// child, so a missing program fails in the parent, not as exit code 127).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chainmail::harness {

using Env = std::map<std::string, std::string, std::less<>>;

struct RunResult {
  int exit_code = -1;  // Exit status; 128+N when killed by signal N; -1 when timed out.
  std::string out;
  std::string err;
  bool timed_out = false;  // The command was still running at the timeout and was killed with SIGKILL.
};

RunResult run(const std::vector<std::string>& argv, std::string_view stdin_text = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(30), const Env& extra_env = {});

class Process {
 public:
  Process() = default;  // No child; running() is false.
  // Starts argv with stdin from /dev/null and stdout+stderr appended to log_path (created if needed).
  Process(const std::vector<std::string>& argv, const std::filesystem::path& log_path,
          const Env& extra_env = {});
  ~Process();

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;

  pid_t pid() const { return pid_; }  // -1 when there never was a child; kept after it exits, for messages.
  const std::filesystem::path& log_path() const { return log_path_; }

  // True while the child has not exited (a paused child is running). Reaps it when it has.
  bool running();

  // SIGTERM (plus SIGCONT, so a paused child sees it), SIGKILL once `timeout` has passed, and always waits
  // for it. Returns the exit status as in RunResult::exit_code (never -1); -1 when there was no child.
  int terminate(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // SIGSTOP / SIGCONT: a stopped server keeps its listening socket, so clients connect and then hang, which
  // is how a slow or wedged server looks from the outside.
  void pause();
  void resume();

 private:
  void terminate_quietly() noexcept;  // For the destructor and move assignment, which must not throw.

  pid_t pid_ = -1;
  std::optional<int> exit_code_;  // Set once reaped.
  std::filesystem::path log_path_;
};

}  // namespace chainmail::harness
