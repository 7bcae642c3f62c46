// filing_load.cc - bench/filing's load driver: runs one process per message, as Postfix's pipe(8) does, with
// the message on stdin, at most C at a time, and times the whole batch.
//
//   filing_load --concurrency C --log FILE CORPUS_DIR -- COMMAND ARG...
//
// Every regular file in CORPUS_DIR (sorted by name) is one message. In the command's arguments "%q" becomes
// a queue id unique to the message (Postfix's ${queue_id}). The children inherit this process's environment
// and credentials (bench/filing/run starts it with setpriv as the mail user and a clean environment); their
// stdout goes to /dev/null and their stderr is appended to FILE, so the log line each contender writes per
// message costs both the same. Processes start with posix_spawn (vfork-like), so the driver's own cost per
// message is a few tens of microseconds and the same for every contender.
//
// Prints one JSON object: messages, seconds (first start to last exit), per_second, failed, and the first
// few failures (message, exit status). It exits 0 when it could run everything, whatever the children's
// exits: bench/filing/run decides what a failure means.
//
// DIAGNOSTICS: exit 64 for a bad command line, 71 when a process cannot be started or waited for.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

constexpr int kExitUsage = 64;
constexpr int kExitOsErr = 71;
constexpr std::size_t kFailuresShown = 5;

struct Options {
  unsigned concurrency = 1;
  std::string log_file = "/dev/null";
  fs::path corpus;
  std::vector<std::string> command;
};

bool parse(int argc, char** argv, Options& opt) {
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--concurrency" && i + 1 < argc) {
      opt.concurrency = static_cast<unsigned>(std::stoul(argv[++i]));
    } else if (arg == "--log" && i + 1 < argc) {
      opt.log_file = argv[++i];
    } else if (opt.corpus.empty() && arg.rfind("--", 0) != 0) {
      opt.corpus = arg;
    } else {
      return false;
    }
  }
  for (; i < argc; ++i) opt.command.emplace_back(argv[i]);
  return opt.concurrency > 0 && !opt.corpus.empty() && !opt.command.empty();
}

// Postfix queue ids are upper-case hex; this one is the message's index with a fixed prefix.
std::string queue_id(std::size_t index) {
  std::string hex;
  do {
    hex.insert(hex.begin(), "0123456789ABCDEF"[index % 16]);
    index /= 16;
  } while (index != 0);
  return "4F" + std::string(hex.size() < 8 ? 8 - hex.size() : 0, '0') + hex;
}

std::vector<std::string> argv_for(const std::vector<std::string>& command, std::size_t index) {
  std::vector<std::string> out;
  out.reserve(command.size());
  for (const auto& arg : command) {
    std::string a = arg;
    for (std::size_t pos = a.find("%q"); pos != std::string::npos; pos = a.find("%q", pos)) {
      const std::string id = queue_id(index);
      a.replace(pos, 2, id);
      pos += id.size();
    }
    out.push_back(std::move(a));
  }
  return out;
}

struct FileActions {
  posix_spawn_file_actions_t actions{};
  FileActions() { posix_spawn_file_actions_init(&actions); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  FileActions(FileActions&&) = delete;
  FileActions& operator=(FileActions&&) = delete;
};

// Starts `args` with `message` on stdin; returns the pid, or -1 with errno set.
pid_t start(const std::vector<std::string>& args, const fs::path& message, const std::string& log_file) {
  FileActions fa;
  posix_spawn_file_actions_addopen(&fa.actions, STDIN_FILENO, message.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa.actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa.actions, STDERR_FILENO, log_file.c_str(),
                                   O_WRONLY | O_APPEND | O_CREAT, 0600);
  std::vector<char*> cargv;
  cargv.reserve(args.size() + 1);
  for (const auto& a : args) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, cargv[0], &fa.actions, nullptr, cargv.data(), environ);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  return pid;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 32) {
      out += ' ';
    } else {
      out += ch;
    }
  }
  return out;
}

int run(int argc, char** argv) {
  Options opt;
  if (!parse(argc, argv, opt)) {
    std::cerr << "usage: filing_load --concurrency C --log FILE CORPUS_DIR -- COMMAND ARG...\n";
    return kExitUsage;
  }
  std::vector<fs::path> messages;
  for (const auto& e : fs::directory_iterator(opt.corpus)) {
    if (e.is_regular_file()) messages.push_back(e.path());
  }
  std::sort(messages.begin(), messages.end());

  std::map<pid_t, std::size_t> running;  // pid -> message index
  std::vector<std::pair<std::size_t, int>> failures;
  std::size_t next = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (next < messages.size() || !running.empty()) {
    while (next < messages.size() && running.size() < opt.concurrency) {
      const pid_t pid = start(argv_for(opt.command, next), messages[next], opt.log_file);
      if (pid < 0) {
        std::cerr << "filing_load: cannot start " << opt.command.front()
                  << " (or open its stdin, stdout or log): " << std::strerror(errno) << '\n';
        return kExitOsErr;
      }
      running.emplace(pid, next);
      ++next;
    }
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, 0);
    if (done < 0) {
      if (errno == EINTR) continue;
      std::cerr << "filing_load: waitpid: " << std::strerror(errno) << '\n';
      return kExitOsErr;
    }
    const auto it = running.find(done);
    if (it == running.end()) continue;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0) failures.emplace_back(it->second, code);
    running.erase(it);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::string out = "{\"messages\": " + std::to_string(messages.size());
  out += ", \"concurrency\": " + std::to_string(opt.concurrency);
  out += ", \"seconds\": " + std::to_string(seconds);
  out += ", \"per_second\": ";
  out += std::to_string(seconds > 0 ? static_cast<double>(messages.size()) / seconds : 0.0);
  out += ", \"failed\": " + std::to_string(failures.size());
  out += ", \"failures\": [";
  for (std::size_t i = 0; i < failures.size() && i < kFailuresShown; ++i) {
    if (i != 0) out += ", ";
    out += "{\"message\": \"";
    out += json_escape(messages[failures[i].first].filename().string());
    out += "\", \"exit\": ";
    out += std::to_string(failures[i].second);
    out += '}';
  }
  out += "]}";
  std::cout << out << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "filing_load: " << e.what() << '\n';
    return kExitUsage;
  }
}
