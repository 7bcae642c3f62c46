// libmilter_io.cc - libmilter's connections read and write through the buffers of connection_io.h.
//
// libmilter spends four system calls on every milter command it reads (poll, read of the header, poll, read
// of the rest) and two on every reply (poll, writev), and at end of message each header or recipient edit
// is a reply that wakes the MTA. Profiled under bench/milter, poll(), read() and writev() were 40% of the
// daemon's CPU time. libmilter calls accept(), poll(), read(), write(), writev() and close() through its
// PLT, so these definitions in the executable take the place of libc's for it, as libmilter_signals.cc does
// for sigwait():
//   accept()  a connection accepted by libmilter's listener (the caller's code lies in libmilter) gets a
//             ConnectionIo; any other accept() in the process is passed through untouched.
//   read()    on such a connection is served by its ReadAhead, which reads from the kernel at most once for
//             many commands.
//   writev()  on such a connection goes through its ReplyBatch: edits are held until the reply that ends
//             the step, then all are sent in one non-blocking call. write() sends anything held first.
//   poll()    of one such connection answers at once when the kernel's answer is known: readable when bytes
//             are buffered; writable unless a write would have blocked (then the kernel is asked, with
//             libmilter's timeout, as before). Otherwise, and for everything else, libc's poll; when it
//             finds the connection readable, what is waiting is read into the buffer at once (libmilter
//             polls twice before each read: once to see whether the session stays on its worker thread,
//             once in mi_rd_cmd()).
//   close()   drops the connection's buffers before the descriptor (and its number) is released.
// The bytes each side sees, their order, end of file and errors are unchanged. Every other caller of these
// functions pays one table lookup. The real functions are found with dlsym(RTLD_NEXT), which is libc's, or
// a sanitizer runtime's interceptor in a sanitizer build.
#include <dlfcn.h>
#include <link.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>

#include "milter/connection_io.h"

namespace {

using chainmail::milter::ConnectionIo;
using chainmail::milter::ConnectionTable;
using chainmail::milter::ReadAhead;

// Enough for a message's headers and macros in one read; body chunks (up to 64 KiB) bypass it.
constexpr std::size_t kReadAheadBytes = std::size_t{16} * 1024;

template <typename Fn>
Fn next_definition(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
}

using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
using PollFn = int (*)(pollfd*, nfds_t, int);
using CloseFn = int (*)(int);
using WriteFn = ssize_t (*)(int, const void*, std::size_t);
using WritevFn = ssize_t (*)(int, const iovec*, int);

ssize_t real_read(int fd, void* buf, std::size_t count) {
  static const auto fn = next_definition<ReadAhead::ReadFn>("read");
  return fn(fd, buf, count);
}

// writev(2) that never waits: a full socket is reported (EAGAIN, or a short count) to ReplyBatch, which
// leaves the waiting to libmilter's poll() and its timeout. MSG_NOSIGNAL: a closed peer is EPIPE, as
// libmilter (which ignores SIGPIPE) would see from writev().
ssize_t send_nonblocking(int fd, const iovec* iov, int iovcnt) {
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(iov);  // NOLINT(cppcoreguidelines-pro-type-const-cast): not written to
  message.msg_iovlen = static_cast<std::size_t>(iovcnt);
  return ::sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
}

// read(2) that never waits, for ReadAhead::fill() after poll() said readable.
ssize_t receive_nonblocking(int fd, void* buf, std::size_t count) {
  return ::recv(fd, buf, count, MSG_DONTWAIT);
}

// Never destroyed: libmilter's threads may still read while the process exits.
ConnectionTable& table() {
  static auto* const instance = new ConnectionTable;  // NOLINT(cppcoreguidelines-owning-memory)
  return *instance;
}

// libmilter's code in memory, found once: the address range of each of its loaded segments.
struct CodeRange {
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;
};
struct LibmilterCode {
  static constexpr std::size_t kMaxSegments = 8;
  std::array<CodeRange, kMaxSegments> segments{};
  std::size_t count = 0;
};

int find_libmilter(dl_phdr_info* info, std::size_t /*size*/, void* data) {
  if (info->dlpi_name == nullptr || std::strstr(info->dlpi_name, "/libmilter.so") == nullptr) return 0;
  auto* code = static_cast<LibmilterCode*>(data);
  for (ElfW(Half) i = 0; i < info->dlpi_phnum && code->count < LibmilterCode::kMaxSegments; ++i) {
    const ElfW(Phdr)& segment =
        info->dlpi_phdr[i];  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic)
    if (segment.p_type != PT_LOAD) continue;
    const std::uintptr_t begin = info->dlpi_addr + segment.p_vaddr;
    code->segments.at(code->count++) = {begin, begin + segment.p_memsz};
  }
  return 1;
}

// Whether `code` lies in libmilter. Asked once per accepted connection; libmilter is loaded before main()
// (the executable links it), so the ranges found at the first call hold for the life of the process.
bool in_libmilter(void* code) {
  static const LibmilterCode libmilter = [] {
    LibmilterCode found;
    dl_iterate_phdr(find_libmilter, &found);
    return found;
  }();
  const auto address =
      reinterpret_cast<std::uintptr_t>(code);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
  for (std::size_t i = 0; i < libmilter.count; ++i) {
    const CodeRange& range = libmilter.segments.at(i);
    if (address >= range.begin && address < range.end) return true;
  }
  return false;
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
  if (ConnectionIo* conn = table().find(fd); conn != nullptr) return conn->in.read(fd, buf, count, real_read);
  return real_read(fd, buf, count);
}

extern "C" ssize_t writev(int fd, const iovec* iov, int iovcnt) {
  static const auto fn = next_definition<WritevFn>("writev");
  if (ConnectionIo* conn = table().find(fd); conn != nullptr)
    return conn->out.writev(fd, iov, iovcnt, send_nonblocking);
  return fn(fd, iov, iovcnt);
}

extern "C" ssize_t write(int fd, const void* buf, std::size_t count) {
  static const auto fn = next_definition<WriteFn>("write");
  if (ConnectionIo* conn = table().find(fd); conn != nullptr) {
    const iovec one{const_cast<void*>(buf), count};  // NOLINT(cppcoreguidelines-pro-type-const-cast)
    return conn->out.writev(fd, &one, 1, send_nonblocking);
  }
  return fn(fd, buf, count);
}

extern "C" int poll(pollfd* fds, nfds_t nfds, int timeout) {
  static const auto fn = next_definition<PollFn>("poll");
  ConnectionIo* const conn = nfds == 1 && fds != nullptr ? table().find(fds[0].fd) : nullptr;
  if (conn == nullptr) return fn(fds, nfds, timeout);
  const short events = fds[0].events;  // NOLINT(google-runtime-int): poll's type
  if ((events & POLLIN) != 0 && conn->in.readable()) {
    fds[0].revents = static_cast<short>(events & (POLLIN | POLLRDNORM));  // NOLINT(google-runtime-int)
    return 1;
  }
  const bool output_only = (events & (POLLOUT | POLLWRNORM)) != 0 && (events & ~(POLLOUT | POLLWRNORM)) == 0;
  if (output_only && !conn->out.blocked()) {
    fds[0].revents = events;
    return 1;
  }
  const int ready = fn(fds, nfds, timeout);
  if (ready > 0 && (fds[0].revents & POLLIN) != 0) conn->in.fill(fds[0].fd, receive_nonblocking);
  if (ready > 0 && (fds[0].revents & (POLLOUT | POLLWRNORM | POLLERR | POLLHUP)) != 0) conn->out.unblock();
  return ready;
}

extern "C" int close(int fd) {
  static const auto fn = next_definition<CloseFn>("close");
  table().detach(fd);
  return fn(fd);
}
