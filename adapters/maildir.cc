// maildir.cc - see maildir.h. Plain POSIX calls; every descriptor is owned by a UniqueFd.
#include "adapters/maildir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

#include "adapters/unique_fd.h"
#include "core/maildir_folder.h"

namespace chainmail {
namespace {

namespace fs = std::filesystem;

std::string errno_text(std::string_view step, const fs::path& path, int err) {
  std::string out(step);
  out += ' ';
  out += path.string();
  out += ": ";
  out += std::strerror(err);
  return out;
}

// mkdir that accepts an existing directory.
int make_dir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return 0;
  return errno;
}

int fsync_dir(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  if (::fsync(fd.get()) != 0) return errno;
  return 0;
}

int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

std::string read_file(const fs::path& path, int& err) {
  err = 0;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    err = errno == ENOENT ? 0 : errno;
    return {};
  }
  std::string out;
  std::array<char, 8192> buf{};
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      return {};
    }
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  return out;
}

std::string make_maildir(const fs::path& dir) {
  if (const int e = make_dir(dir)) return errno_text("mkdir", dir, e);
  for (const char* sub : {"tmp", "new", "cur"}) {
    if (const int e = make_dir(dir / sub)) return errno_text("mkdir", dir / sub, e);
  }
  return {};
}

// The line naming `folder` in a subscriptions file holding `content` (format V2 separates the hierarchy with
// TABs, the old format with the Maildir++ dots).
std::string subscription_line(const std::string& content, std::string_view folder) {
  std::string name(folder);
  if (content.rfind("V\t2", 0) == 0) {
    for (char& ch : name) {
      if (ch == '.') ch = '\t';
    }
  }
  return name;
}

bool subscribed(const std::string& content, std::string_view folder) {
  const std::string name = subscription_line(content, folder);
  std::istringstream lines(content);
  for (std::string line; std::getline(lines, line);) {
    if (line == name) return true;
  }
  return false;
}

// Adds `folder` to root/subscriptions unless it is there, under Dovecot's dot-lock.
std::string subscribe(const fs::path& root, std::string_view folder) {
  const fs::path file = root / "subscriptions";
  const fs::path lock = root / "subscriptions.lock";
  // Nearly always it is there already: look without the lock first (writers replace the file with rename(),
  // so it is read whole, old or new), so that concurrent deliveries do not queue on the lock for nothing.
  {
    int err = 0;
    const std::string current = read_file(file, err);
    if (err == 0 && subscribed(current, folder)) return {};
  }
  UniqueFd fd;
  for (int attempt = 0;; ++attempt) {
    fd = UniqueFd(::open(lock.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd.valid()) break;
    if (errno != EEXIST) return errno_text("create", lock, errno);
    struct stat st {};
    // A lock left by a crashed writer: Dovecot's default stale timeout is two minutes.
    if (::stat(lock.c_str(), &st) == 0 && st.st_mtime + 120 < ::time(nullptr)) {
      ::unlink(lock.c_str());
      continue;
    }
    if (attempt >= 100) return "subscriptions.lock is held by another process";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto fail = [&lock](std::string why) {
    ::unlink(lock.c_str());
    return why;
  };
  int err = 0;
  const std::string old = read_file(file, err);
  if (err != 0) return fail(errno_text("read", file, err));
  if (subscribed(old, folder)) return fail({});
  std::string content = old;
  if (!content.empty() && content.back() != '\n') content += '\n';
  content += subscription_line(old, folder);
  content += '\n';
  if (const int e = write_all(fd.get(), content)) return fail(errno_text("write", lock, e));
  if (::fsync(fd.get()) != 0) return fail(errno_text("fsync", lock, errno));
  if (::rename(lock.c_str(), file.c_str()) != 0) return fail(errno_text("rename", lock, errno));
  if (const int e = fsync_dir(root)) return errno_text("fsync", root, e);
  return {};
}

std::string hostname_part() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0) return "localhost";
  std::string out;
  for (const char ch : std::string_view(buf.data())) {
    if (ch == '/') {
      out += "\\057";
    } else if (ch == ':') {
      out += "\\072";
    } else {
      out += ch;
    }
  }
  return out.empty() ? "localhost" : out;
}

std::string unique_name(std::size_t size) {
  static std::atomic<unsigned> counter{0};
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  std::string out = std::to_string(tv.tv_sec);
  out += ".M";
  out += std::to_string(tv.tv_usec);
  out += 'P';
  out += std::to_string(::getpid());
  out += 'Q';
  out += std::to_string(counter.fetch_add(1));
  out += '.';
  out += hostname_part();
  out += ",S=";
  out += std::to_string(size);
  return out;
}

}  // namespace

std::string ensure_maildir_folder(const fs::path& root, std::string_view folder) {
  if (!valid_maildir_folder(folder)) return "invalid folder name";
  if (auto e = make_maildir(root); !e.empty()) return e;
  if (is_inbox_folder(folder)) return {};
  const fs::path dir = maildir_folder_dir(root, folder);
  if (auto e = make_maildir(dir); !e.empty()) return e;
  const fs::path marker = dir / "maildirfolder";
  UniqueFd fd(::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return errno_text("create", marker, errno);
  return subscribe(root, folder);
}

MaildirDelivery deliver_to_maildir(const fs::path& root, std::string_view folder,
                                   std::string_view message) noexcept {
  MaildirDelivery out;
  try {
    if (auto e = ensure_maildir_folder(root, folder); !e.empty()) {
      out.error = std::move(e);
      out.errno_value = errno;
      return out;
    }
    const fs::path dir = maildir_folder_dir(root, folder);
    const std::string name = unique_name(message.size());
    const fs::path tmp = dir / "tmp" / name;
    const fs::path dest = dir / "new" / name;
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) {
      out.errno_value = errno;
      out.error = errno_text("create", tmp, errno);
      return out;
    }
    auto fail = [&](std::string_view step, const fs::path& p, int err) {
      ::unlink(tmp.c_str());
      out.errno_value = err;
      out.error = errno_text(step, p, err);
      return out;
    };
    if (const int e = write_all(fd.get(), message)) return fail("write", tmp, e);
    if (::fsync(fd.get()) != 0) return fail("fsync", tmp, errno);
    fd.reset();  // after a successful fsync, close(2) has nothing left to report on a local file system
    if (::link(tmp.c_str(), dest.c_str()) != 0) return fail("link", dest, errno);
    ::unlink(tmp.c_str());
    if (const int e = fsync_dir(dir / "new")) {
      ::unlink(dest.c_str());  // not yet durable: Postfix keeps the message and tries again
      return fail("fsync", dir / "new", e);
    }
    static_cast<void>(fsync_dir(dir / "tmp"));  // the unlink need not be durable
    out.ok = true;
    out.path = dest.string();
  } catch (const std::exception& e) {
    out.error = e.what();
  } catch (...) {
    out.error = "unexpected failure";
  }
  return out;
}

}  // namespace chainmail
