// process.cc: see process.h.
#include "harness/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include "adapters/unique_fd.h"
#include "harness/paths.h"

extern char** environ;

namespace chainmail::harness {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits for `pid` until `deadline`, polling every 10 ms (waitpid has no timeout). Returns the decoded status,
// or nothing if it is still running.
std::optional<int> wait_until(pid_t pid, Clock::time_point deadline) {
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode_status(status);
    if (r < 0 && errno != EINTR) throw_errno("waitpid " + std::to_string(pid));
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int wait_blocking(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid " + std::to_string(pid));
  }
  return decode_status(status);
}

// Kills and reaps a run() child if an exception leaves run() before it was waited for.
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ~ChildGuard() {
    if (pid_ < 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  void release() { pid_ = -1; }

 private:
  pid_t pid_;
};

// Everything execve needs, built before fork(): between fork and exec in a possibly multi-threaded process
// only async-signal-safe calls are allowed, so no allocation there.
struct ExecPlan {
  ExecPlan(const std::vector<std::string>& argv_in, const Env& extra_env) {
    if (argv_in.empty()) throw std::invalid_argument("spawn: empty argv");
    path = find_program(argv_in.front()).string();
    args = argv_in;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view entry = *e;
      if (!extra_env.contains(entry.substr(0, entry.find('=')))) env.emplace_back(entry);
    }
    for (const auto& [key, value] : extra_env) {
      env.push_back(key);
      env.back().append("=").append(value);
    }
    for (auto& a : args) argv_ptrs.push_back(a.data());
    argv_ptrs.push_back(nullptr);
    for (auto& e : env) env_ptrs.push_back(e.data());
    env_ptrs.push_back(nullptr);
  }

  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<char*> argv_ptrs;
  std::vector<char*> env_ptrs;
};

// Forks and execs with `fds` as the child's 0, 1 and 2. All harness fds are O_CLOEXEC, so the child gets only
// these three. An exec failure travels back over a close-on-exec pipe: EOF there means exec succeeded.
pid_t spawn(const ExecPlan& plan, std::array<int, 3> fds) {
  std::array<int, 2> report{};
  if (::pipe2(report.data(), O_CLOEXEC) != 0) throw_errno("pipe2");
  UniqueFd report_read(report[0]);
  UniqueFd report_write(report[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // The parent died before prctl took effect.
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // Daemons must see SIGTERM even if the test blocks it.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, nullptr);  // An ignored SIGPIPE would be inherited across exec.
    for (int target = 0; target < 3; ++target) {
      const int fd = fds[static_cast<std::size_t>(target)];
      // dup2 onto itself keeps FD_CLOEXEC set, so clear it explicitly in that case.
      const int r = (fd == target) ? ::fcntl(fd, F_SETFD, 0) : ::dup2(fd, target);
      if (r < 0) break;  // execve below still runs; the failure shows up as missing output.
    }
    ::execve(plan.path.c_str(), plan.argv_ptrs.data(), plan.env_ptrs.data());
    const int err = errno;
    [[maybe_unused]] const ssize_t ignored = ::write(report_write.get(), &err, sizeof err);
    ::_exit(127);
  }

  report_write.reset();
  int child_errno = 0;
  ssize_t n = 0;
  do {
    n = ::read(report_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    wait_blocking(pid);
    throw std::system_error(child_errno, std::generic_category(), "exec " + plan.path);
  }
  return pid;
}

// Reads what poll() reported ready on `fd` into `sink`; closes `fd` at EOF (the child, and anything it
// started, closed the stream) or on a read error.
void drain(const pollfd& pfd, UniqueFd& fd, std::string& sink) {
  if (pfd.revents == 0) return;
  std::array<char, 65536> buf;
  const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
  if (n > 0) {
    sink.append(buf.data(), static_cast<std::size_t>(n));
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    fd.reset();
  }
}

UniqueFd open_or_throw(const std::filesystem::path& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, 0644));
  if (!fd.valid()) throw_errno("open " + path.string());
  return fd;
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, std::string_view stdin_text,
              std::chrono::milliseconds timeout, const Env& extra_env) {
  const ExecPlan plan(argv, extra_env);
  const auto deadline = Clock::now() + timeout;

  // stdin is a socket pair rather than a pipe so that send(MSG_NOSIGNAL) can write to it: a child that exits
  // without reading must give EPIPE here, not a SIGPIPE that kills the test process.
  std::array<int, 2> in{}, out{}, err{};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in.data()) != 0) throw_errno("socketpair");
  UniqueFd in_parent(in[0]), in_child(in[1]);
  if (::pipe2(out.data(), O_CLOEXEC) != 0) throw_errno("pipe2");
  UniqueFd out_parent(out[0]), out_child(out[1]);
  if (::pipe2(err.data(), O_CLOEXEC) != 0) throw_errno("pipe2");
  UniqueFd err_parent(err[0]), err_child(err[1]);

  const pid_t pid = spawn(plan, {in_child.get(), out_child.get(), err_child.get()});
  ChildGuard guard(pid);
  in_child.reset();  // Our copies of the child's ends would hide EOF from both sides.
  out_child.reset();
  err_child.reset();

  RunResult result;
  std::size_t written = 0;
  if (stdin_text.empty()) in_parent.reset();

  while (out_parent.valid() || err_parent.valid()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    std::array<pollfd, 3> pfds{};
    pfds[0] = {in_parent.get(), POLLOUT,
               0};  // poll() skips negative fds, so closed streams need no special case.
    pfds[1] = {out_parent.get(), POLLIN, 0};
    pfds[2] = {err_parent.get(), POLLIN, 0};
    if (::poll(pfds.data(), pfds.size(), static_cast<int>(left.count()) + 1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (pfds[0].revents != 0) {
      const ssize_t n = ::send(in_parent.get(), stdin_text.data() + written, stdin_text.size() - written,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) written += static_cast<std::size_t>(n);
      // Done, or the child stopped reading (EPIPE/ECONNRESET): either way it gets EOF now.
      if (written == stdin_text.size() || (n < 0 && errno != EAGAIN && errno != EINTR)) in_parent.reset();
    }
    drain(pfds[1], out_parent, result.out);
    drain(pfds[2], err_parent, result.err);
  }

  // Both streams are closed, but the child may still be running; give it until the deadline to exit.
  std::optional<int> status;
  if (!result.timed_out) status = wait_until(pid, deadline);
  if (status) {
    guard.release();
    result.exit_code = *status;
  } else {
    result.timed_out = true;  // The guard kills and reaps it.
    result.exit_code = -1;
  }
  return result;
}

Process::Process(const std::vector<std::string>& argv, const std::filesystem::path& log_path,
                 const Env& extra_env)
    : log_path_(log_path) {
  const ExecPlan plan(argv, extra_env);
  const UniqueFd null_in = open_or_throw("/dev/null", O_RDONLY);
  const UniqueFd log = open_or_throw(log_path, O_WRONLY | O_CREAT | O_APPEND);
  pid_ = spawn(plan, {null_in.get(), log.get(), log.get()});
}

Process::~Process() {
  terminate_quietly();
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      exit_code_(std::exchange(other.exit_code_, std::nullopt)),
      log_path_(std::move(other.log_path_)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    terminate_quietly();
    pid_ = std::exchange(other.pid_, -1);
    exit_code_ = std::exchange(other.exit_code_, std::nullopt);
    log_path_ = std::move(other.log_path_);
  }
  return *this;
}

bool Process::running() {
  if (pid_ < 0 || exit_code_) return false;
  exit_code_ = wait_until(pid_, Clock::time_point::min());
  return !exit_code_;
}

int Process::terminate(std::chrono::milliseconds timeout) {
  if (pid_ < 0) return -1;
  if (!exit_code_) {
    ::kill(pid_, SIGTERM);
    ::kill(pid_, SIGCONT);
    exit_code_ = wait_until(pid_, Clock::now() + timeout);
    if (!exit_code_) {
      ::kill(pid_, SIGKILL);
      exit_code_ = wait_blocking(pid_);
    }
  }
  return *exit_code_;
}

void Process::terminate_quietly() noexcept {
  try {
    terminate();
  } catch (const std::exception&) {
    // Only waitpid can fail here (ECHILD: someone else reaped it); the child is gone either way.
  }
}

void Process::pause() {
  if (running() && ::kill(pid_, SIGSTOP) != 0) throw_errno("kill SIGSTOP " + std::to_string(pid_));
}

void Process::resume() {
  if (running() && ::kill(pid_, SIGCONT) != 0) throw_errno("kill SIGCONT " + std::to_string(pid_));
}

}  // namespace chainmail::harness
