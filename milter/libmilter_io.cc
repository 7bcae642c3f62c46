// libmilter_io.cc - libmilter's connections read through a read-ahead buffer (read_ahead.h).
//
// libmilter spends four system calls on every milter command it reads (poll, read of the header, poll, read
// of the rest), and most of a message's commands arrive together. Profiled under bench/milter, poll() and
// read() were 30% of the daemon's CPU time. libmilter calls accept(), poll(), read() and close() through its
// PLT, so these definitions in the executable take the place of libc's for it, as libmilter_signals.cc does
// for sigwait():
//   accept()  a connection accepted by libmilter's listener (the caller's code lies in libmilter) gets a
//             ReadAhead; any other accept() in the process is passed through untouched.
//   read()    on such a connection is served by its ReadAhead, which reads from the kernel at most once for
//             many commands; every other descriptor goes straight to libc.
//   poll()    of one such connection for input answers "readable" at once when bytes are already
//             buffered, which is what the kernel would say; otherwise, and for everything else, libc's poll.
//   close()   drops the connection's buffer before the descriptor (and its number) is released.
// The bytes libmilter sees, end of file and errors are unchanged; writes are untouched. Every other caller
// of these functions pays one table lookup. The real functions are found with dlsym(RTLD_NEXT), which is
// libc's, or a sanitizer runtime's interceptor in a sanitizer build.
#include <dlfcn.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "milter/read_ahead.h"

namespace {

using chainmail::milter::ReadAhead;
using chainmail::milter::ReadAheadTable;

// Enough for a message's headers and macros in one read; body chunks (up to 64 KiB) bypass it.
constexpr std::size_t kReadAheadBytes = std::size_t{16} * 1024;

template <typename Fn>
Fn next_definition(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
}

using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
using PollFn = int (*)(pollfd*, nfds_t, int);
using CloseFn = int (*)(int);

ssize_t real_read(int fd, void* buf, std::size_t count) {
  static const auto fn = next_definition<ReadAhead::ReadFn>("read");
  return fn(fd, buf, count);
}

// Never destroyed: libmilter's threads may still read while the process exits.
ReadAheadTable& table() {
  static auto* const instance = new ReadAheadTable;  // NOLINT(cppcoreguidelines-owning-memory)
  return *instance;
}

// Whether `code` lies in libmilter. Asked once per accepted connection; libmilter's base address is
// remembered once seen.
bool in_libmilter(void* code) {
  static std::atomic<void*> libmilter_base{nullptr};
  Dl_info info{};
  if (dladdr(code, &info) == 0 || info.dli_fbase == nullptr) return false;
  void* const base = libmilter_base.load(std::memory_order_relaxed);
  if (base != nullptr) return info.dli_fbase == base;
  if (info.dli_fname == nullptr || std::strstr(info.dli_fname, "/libmilter.so") == nullptr) return false;
  libmilter_base.store(info.dli_fbase, std::memory_order_relaxed);
  return true;
}

}  // namespace

extern "C" int accept(int fd, sockaddr* addr, socklen_t* len) {
  static const auto fn = next_definition<AcceptFn>("accept");
  const int conn = fn(fd, addr, len);
  if (conn >= 0) {
    if (in_libmilter(__builtin_return_address(0))) {
      table().attach(conn, kReadAheadBytes);  // on failure the connection is simply unbuffered
    } else {
      table().detach(conn);
    }
  }
  return conn;
}

extern "C" ssize_t read(int fd, void* buf, std::size_t count) {
  if (ReadAhead* buffer = table().find(fd); buffer != nullptr) return buffer->read(fd, buf, count, real_read);
  return real_read(fd, buf, count);
}

extern "C" int poll(pollfd* fds, nfds_t nfds, int timeout) {
  static const auto fn = next_definition<PollFn>("poll");
  if (nfds == 1 && fds != nullptr && (fds[0].events & POLLIN) != 0) {
    if (const ReadAhead* buffer = table().find(fds[0].fd); buffer != nullptr && buffer->buffered()) {
      fds[0].revents =
          static_cast<short>(fds[0].events & (POLLIN | POLLRDNORM));  // NOLINT(google-runtime-int)
      return 1;
    }
  }
  return fn(fds, nfds, timeout);
}

extern "C" int close(int fd) {
  static const auto fn = next_definition<CloseFn>("close");
  table().detach(fd);
  return fn(fd);
}
