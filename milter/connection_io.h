// connection_io.h - buffers for libmilter's connections, so that one system call does the work of many.
//
// libmilter reads every command with poll(), read() of the 5-byte length and command, poll() and read() of
// the rest: four system calls per command, and a message is 25-40 commands (macros, each header, body
// chunks). It writes every reply with poll() and writev(), and at end of message each header or recipient
// edit is a reply of its own, each waking the MTA. libmilter_io.cc puts these buffers under libmilter:
//
// ReadAhead  reads whatever is waiting, up to its capacity, in one call and answers the small reads that
//            follow from memory. The MTA writes most commands back to back (headers under SMFIP_NR_HDR are
//            not answered), so they are already in the socket buffer. A read at least as large as the buffer
//            (a body chunk) goes straight to the kernel when nothing is buffered. When a poll() finds the
//            connection readable, the buffer is filled at once, so libmilter's next poll() and read() (it
//            polls twice before reading) are answered from memory.
// ReplyBatch holds the message edits (SMFIR_ADDHEADER, SMFIR_DELRCPT, ...; only legal at end of message,
//            always followed by a final reply) and writes them with the reply that follows, in one call.
//            Writes are non-blocking; a write that would block or writes only part is reported as EAGAIN or
//            a short count and marks the connection blocked, so that libmilter's next poll() is a real one
//            with libmilter's own timeout. Until then a poll() for output answers "writable" at once.
//
// The bytes each side sees, their order, end of file and errors are exactly what they would have been; only
// the number of system calls and wake-ups changes. A ConnectionIo belongs to one connection and is used by
// one thread at a time (libmilter serves a connection from one thread at a time).
#ifndef CHAINMAIL_MILTER_CONNECTION_IO_H
#define CHAINMAIL_MILTER_CONNECTION_IO_H

#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

namespace chainmail::milter {

class ReadAhead {
 public:
  // The kernel's read(2), or a fake in tests.
  using ReadFn = ssize_t (*)(int fd, void* buf, std::size_t count);

  explicit ReadAhead(std::size_t capacity);

  // A read() would not block: bytes received and not yet handed out, or a kept end of file or error. A
  // poll() for input may answer "readable" without asking the kernel.
  [[nodiscard]] bool readable() const noexcept { return begin_ != end_ || eof_ || error_ != 0; }

  // After the kernel's poll() said readable: takes what is waiting, without blocking (`nonblocking_read`
  // must not wait), so that the poll() and read() libmilter does next are answered from memory. End of
  // file and errors are kept for the next read(); "nothing yet" (EAGAIN) keeps nothing.
  void fill(int fd, ReadFn nonblocking_read) noexcept;

  // read(2)'s contract: up to `count` bytes into `out`; 0 at end of file; -1 with errno from `real_read`.
  // Hands out buffered bytes first (without calling `real_read`, even if fewer than `count`).
  ssize_t read(int fd, void* out, std::size_t count, ReadFn real_read) noexcept;

 private:
  std::unique_ptr<char[]> data_;  // NOLINT(cppcoreguidelines-avoid-c-arrays): a raw byte buffer
  std::size_t capacity_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  bool eof_ = false;
  int error_ = 0;
};

class ReplyBatch {
 public:
  // A non-blocking writev(2) (sendmsg with MSG_DONTWAIT), or a fake in tests.
  using SendFn = ssize_t (*)(int fd, const iovec* iov, int iovcnt);

  // At most this many bytes of edits are held; a larger batch is written as it comes.
  static constexpr std::size_t kMaxHeld = std::size_t{64} * 1024;

  // writev(2)'s contract for one libmilter reply (iov[0] its 4-byte length and command byte, then data):
  // an edit is held and reported as written; anything else is written after what is held, in one call.
  // -1 with errno EAGAIN (and blocked()) when nothing of this reply could be written yet.
  ssize_t writev(int fd, const iovec* iov, int iovcnt, SendFn send) noexcept;

  // A write would have blocked: the next poll() for output must ask the kernel.
  [[nodiscard]] bool blocked() const noexcept { return blocked_; }
  void unblock() noexcept { blocked_ = false; }
  [[nodiscard]] std::size_t held() const noexcept { return held_.size(); }

 private:
  std::string held_;
  bool blocked_ = false;
};

struct ConnectionIo {
  explicit ConnectionIo(std::size_t read_capacity) : in(read_capacity) {}
  ReadAhead in;
  ReplyBatch out;
};

// File descriptor -> its ConnectionIo, for the descriptors below kMaxFd; others are simply not buffered.
// Lookups are lock-free (one atomic load) because every read() and poll() of the process asks.
class ConnectionTable {
 public:
  static constexpr int kMaxFd = 1 << 16;

  // Gives `fd` fresh, empty buffers (replacing any stale ones). False when `fd` is out of range or memory
  // is short; the descriptor is then simply unbuffered.
  bool attach(int fd, std::size_t read_capacity);
  // Frees `fd`'s buffers, if any; call before the descriptor is closed, so its number cannot be reused yet.
  void detach(int fd) noexcept;
  [[nodiscard]] ConnectionIo* find(int fd) const noexcept {
    if (fd < 0 || fd >= kMaxFd) return nullptr;
    return slots_[static_cast<std::size_t>(fd)].load(std::memory_order_acquire);
  }

  ConnectionTable() = default;
  ~ConnectionTable();
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;
  ConnectionTable(ConnectionTable&&) = delete;
  ConnectionTable& operator=(ConnectionTable&&) = delete;

 private:
  std::unique_ptr<std::atomic<ConnectionIo*>[]> slots_ =       // NOLINT(cppcoreguidelines-avoid-c-arrays)
      std::make_unique<std::atomic<ConnectionIo*>[]>(kMaxFd);  // NOLINT(cppcoreguidelines-avoid-c-arrays)
};

}  // namespace chainmail::milter

#endif  // CHAINMAIL_MILTER_CONNECTION_IO_H
