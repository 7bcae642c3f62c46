// read_ahead.h - a read-ahead buffer for libmilter's connections, so one read(2) serves many milter commands.
//
// libmilter reads every command with poll(), read() of the 5-byte length and command, poll() and read() of
// the rest: four system calls per command, and a message is 25-40 commands (macros, each header, body
// chunks). The MTA writes most of them back to back (headers under SMFIP_NR_HDR are not answered), so they
// are already waiting in the socket buffer. ReadAhead reads whatever is waiting, up to its capacity, in one
// call and answers the small reads that follow from memory; a read at least as large as the buffer (a body
// chunk) goes straight to the kernel when nothing is buffered. libmilter_io.cc puts this under libmilter.
//
// The bytes returned, their order and end-of-file or errors are exactly what the kernel would have given;
// only the number of system calls changes. A ReadAhead belongs to one connection and is used by one thread
// at a time (libmilter serves a connection from one thread at a time).
#ifndef CHAINMAIL_MILTER_READ_AHEAD_H
#define CHAINMAIL_MILTER_READ_AHEAD_H

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <memory>

namespace chainmail::milter {

class ReadAhead {
 public:
  // The kernel's read(2), or a fake in tests.
  using ReadFn = ssize_t (*)(int fd, void* buf, std::size_t count);

  explicit ReadAhead(std::size_t capacity);

  // Bytes received and not yet handed out: a poll() for input may answer "readable" without asking.
  [[nodiscard]] bool buffered() const noexcept { return begin_ != end_; }

  // read(2)'s contract: up to `count` bytes into `out`; 0 at end of file; -1 with errno from `real_read`.
  // Hands out buffered bytes first (without calling `real_read`, even if fewer than `count`).
  ssize_t read(int fd, void* out, std::size_t count, ReadFn real_read) noexcept;

 private:
  std::unique_ptr<char[]> data_;  // NOLINT(cppcoreguidelines-avoid-c-arrays): a raw byte buffer
  std::size_t capacity_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// File descriptor -> its ReadAhead, for the descriptors below kMaxFd; others are simply not buffered.
// Lookups are lock-free (one atomic load) because every read() and poll() of the process asks.
class ReadAheadTable {
 public:
  static constexpr int kMaxFd = 1 << 16;

  // Gives `fd` a fresh, empty buffer (replacing any stale one). False when `fd` is out of range.
  bool attach(int fd, std::size_t capacity);
  // Frees `fd`'s buffer, if any; call before the descriptor is closed, so its number cannot be reused yet.
  void detach(int fd) noexcept;
  [[nodiscard]] ReadAhead* find(int fd) const noexcept {
    if (fd < 0 || fd >= kMaxFd) return nullptr;
    return slots_[static_cast<std::size_t>(fd)].load(std::memory_order_acquire);
  }

  ReadAheadTable() = default;
  ~ReadAheadTable();
  ReadAheadTable(const ReadAheadTable&) = delete;
  ReadAheadTable& operator=(const ReadAheadTable&) = delete;
  ReadAheadTable(ReadAheadTable&&) = delete;
  ReadAheadTable& operator=(ReadAheadTable&&) = delete;

 private:
  std::unique_ptr<std::atomic<ReadAhead*>[]> slots_ =       // NOLINT(cppcoreguidelines-avoid-c-arrays)
      std::make_unique<std::atomic<ReadAhead*>[]>(kMaxFd);  // NOLINT(cppcoreguidelines-avoid-c-arrays)
};

}  // namespace chainmail::milter

#endif  // CHAINMAIL_MILTER_READ_AHEAD_H
