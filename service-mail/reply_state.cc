// reply_state.cc - see reply_state.h.
#include "service-mail/reply_state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

namespace chainmail {
namespace {

struct FdCloser {
  void operator()(const int* fd) const {
    if (*fd >= 0) ::close(*fd);
    delete fd;
  }
};
using UniqueFd = std::unique_ptr<int, FdCloser>;

UniqueFd open_fd(const std::string& path, int flags, mode_t mode = 0600) {
  return UniqueFd(new int(::open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW, mode)));
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

bool is_key_name(const char* name) {
  const std::string_view n(name);
  return n.size() == 32 && n.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Removes expired entries and counts the rest.
bool prune(const std::string& dir, std::time_t cutoff, std::size_t& live, std::string& error) {
  const std::unique_ptr<DIR, DirCloser> d(::opendir(dir.c_str()));
  if (!d) {
    error = errno_text("opendir " + dir);
    return false;
  }
  live = 0;
  while (const dirent* e = ::readdir(d.get())) {
    if (!is_key_name(e->d_name)) continue;
    struct stat st {};
    if (::fstatat(::dirfd(d.get()), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (st.st_mtime <= cutoff) {
      ::unlinkat(::dirfd(d.get()), e->d_name, 0);
    } else {
      ++live;
    }
  }
  return true;
}

}  // namespace

ReplySlotResult claim_reply_slot(const std::string& dir, const std::string& key, std::time_t period_s,
                                 std::size_t max_entries, std::time_t now) {
  const auto lock = open_fd(dir + "/.lock", O_RDWR | O_CREAT);
  if (*lock < 0) return {ReplySlot::Trouble, errno_text("open " + dir + "/.lock")};
  while (::flock(*lock, LOCK_EX) != 0) {
    if (errno != EINTR) return {ReplySlot::Trouble, errno_text("flock " + dir + "/.lock")};
  }
  const std::string path = dir + "/" + key;
  const std::time_t cutoff = now - period_s;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (st.st_mtime > cutoff) return {ReplySlot::Limited, {}};
  } else if (errno == ENOENT) {
    std::size_t live = 0;
    std::string error;
    if (!prune(dir, cutoff, live, error)) return {ReplySlot::Trouble, error};
    if (live >= max_entries) return {ReplySlot::Full, {}};
  } else {
    return {ReplySlot::Trouble, errno_text("stat " + path)};
  }
  const auto f = open_fd(path, O_WRONLY | O_CREAT);
  if (*f < 0) return {ReplySlot::Trouble, errno_text("open " + path)};
  const std::array<timespec, 2> times = {timespec{now, 0}, timespec{now, 0}};
  if (::futimens(*f, times.data()) != 0) return {ReplySlot::Trouble, errno_text("futimens " + path)};
  return {ReplySlot::Granted, {}};
}

void release_reply_slot(const std::string& dir, const std::string& key) {
  const auto lock = open_fd(dir + "/.lock", O_RDWR | O_CREAT);
  if (*lock < 0) return;
  while (::flock(*lock, LOCK_EX) != 0) {
    if (errno != EINTR) return;
  }
  ::unlink((dir + "/" + key).c_str());
}

}  // namespace chainmail
