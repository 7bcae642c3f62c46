// subprocess.cc - see subprocess.h.
#include "service-mail/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

namespace chainmail {
namespace {

using Clock = std::chrono::steady_clock;

// A file descriptor closed when it goes out of scope.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

bool make_pipe(Fd& read_end, Fd& write_end) {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) return false;
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return true;
}

// SIGPIPE ignored for as long as it lives, the previous disposition restored after.
class IgnoreSigpipe {
 public:
  IgnoreSigpipe() {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ok_ = ::sigaction(SIGPIPE, &ign, &old_) == 0;
  }
  IgnoreSigpipe(const IgnoreSigpipe&) = delete;
  IgnoreSigpipe& operator=(const IgnoreSigpipe&) = delete;
  ~IgnoreSigpipe() {
    if (ok_) ::sigaction(SIGPIPE, &old_, nullptr);
  }

 private:
  struct sigaction old_ {};
  bool ok_ = false;
};

struct SpawnAttr {
  posix_spawnattr_t attr{};
  SpawnAttr() { posix_spawnattr_init(&attr); }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
};
struct SpawnActions {
  posix_spawn_file_actions_t actions{};
  SpawnActions() { posix_spawn_file_actions_init(&actions); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions); }
};

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string CommandResult::describe() const {
  switch (end) {
    case End::Exited:
      return "exit " + std::to_string(status);
    case End::Signaled:
      return "killed by signal " + std::to_string(status);
    case End::TimedOut:
      return "timed out";
    case End::OutputOverflow:
      return "too much output";
    case End::NotStarted:
      return "not started: " + error;
  }
  return "?";
}

CommandResult run_command(const CommandSpec& spec) {
  CommandResult result;
  if (spec.argv.empty()) {
    result.error = "no command";
    return result;
  }
  Fd in_read;
  Fd in_write;
  Fd out_read;
  Fd out_write;
  if (!make_pipe(in_read, in_write) || !make_pipe(out_read, out_write)) {
    result.error = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  IgnoreSigpipe ignore_sigpipe;

  SpawnAttr attr;
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr.attr, &defaults);
  posix_spawnattr_setsigmask(&attr.attr, &none);
  posix_spawnattr_setpgroup(&attr.attr, 0);
  posix_spawnattr_setflags(&attr.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  SpawnActions actions;
  posix_spawn_file_actions_adddup2(&actions.actions, in_read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions.actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions.actions, out_write.get(), STDERR_FILENO);

  auto argv = c_strings(spec.argv);
  auto envp = c_strings(spec.env);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0], &actions.actions, &attr.attr, argv.data(), envp.data());
  in_read.reset();
  out_write.reset();
  if (rc != 0) {
    result.error = spec.argv.front() + ": " + std::strerror(rc);
    return result;
  }

  ::fcntl(in_write.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(out_read.get(), F_SETFL, O_NONBLOCK);
  const auto deadline = Clock::now() + spec.timeout;
  std::size_t written = 0;
  if (spec.input.empty()) in_write.reset();
  bool killed = false;
  std::array<char, 16384> buf{};
  auto kill_group = [&]() {
    ::kill(-pid, SIGKILL);
    killed = true;
  };

  // Feed stdin and drain the output until the output closes (everything in the group exited or closed
  // it), the deadline passes or the output is too long.
  while (out_read.get() >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      result.end = CommandResult::End::TimedOut;
      kill_group();
      break;
    }
    std::array<pollfd, 2> fds{};
    fds[0] = {out_read.get(), POLLIN, 0};
    fds[1] = {in_write.get(), POLLOUT, 0};  // fd -1 is ignored by poll
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left, 1000)));
    if (n < 0 && errno != EINTR) {
      result.end = CommandResult::End::TimedOut;
      kill_group();
      break;
    }
    if (fds[1].revents != 0) {
      const auto chunk = spec.input.substr(written);
      const ssize_t w = ::write(in_write.get(), chunk.data(), chunk.size());
      if (w > 0) written += static_cast<std::size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written >= spec.input.size()) in_write.reset();
    }
    if (fds[0].revents != 0) {
      const ssize_t r = ::read(out_read.get(), buf.data(), buf.size());
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        out_read.reset();
      } else if (r > 0) {
        const auto room = spec.max_output - std::min(spec.max_output, result.output.size());
        const auto got = static_cast<std::size_t>(r);
        result.output.append(buf.data(), std::min(room, got));
        if (got > room && spec.overflow_kills) {
          result.end = CommandResult::End::OutputOverflow;
          kill_group();
          break;
        }
      }
    }
  }
  in_write.reset();

  // The output is closed (or the group was killed): wait for the leader until the deadline, without reaping
  // it yet, so that its process group id cannot be reused before the rest of the group is killed.
  siginfo_t info{};
  for (;;) {
    info = {};
    const int w = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT | (killed ? 0 : WNOHANG));
    if (w == 0 && info.si_pid == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (!killed && Clock::now() >= deadline) {
      result.end = CommandResult::End::TimedOut;
      kill_group();
      continue;
    }
    if (!killed) ::poll(nullptr, 0, 10);
  }
  ::kill(-pid, SIGKILL);  // stragglers the leader left behind in its group
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (killed) return result;
  if (WIFEXITED(status)) {
    result.end = CommandResult::End::Exited;
    result.status = WEXITSTATUS(status);
  } else {
    result.end = CommandResult::End::Signaled;
    result.status = WIFSIGNALED(status) ? WTERMSIG(status) : -1;
  }
  return result;
}

}  // namespace chainmail
