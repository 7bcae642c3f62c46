// read_ahead.cc - see read_ahead.h.
#include "milter/read_ahead.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace chainmail::milter {

ReadAhead::ReadAhead(std::size_t capacity)
    : data_(std::make_unique<char[]>(capacity)),  // NOLINT(cppcoreguidelines-avoid-c-arrays)
      capacity_(capacity) {}

ssize_t ReadAhead::read(int fd, void* out, std::size_t count, ReadFn real_read) noexcept {
  if (count == 0) return real_read(fd, out, 0);
  if (begin_ == end_) {
    // A request the buffer could not improve on goes to the kernel as it is: no copy of body chunks.
    if (count >= capacity_) return real_read(fd, out, count);
    const ssize_t got = real_read(fd, data_.get(), capacity_);
    if (got <= 0) return got;  // end of file or an error, errno as the kernel set it
    begin_ = 0;
    end_ = static_cast<std::size_t>(got);
  }
  const std::size_t n = std::min(count, end_ - begin_);
  std::memcpy(out, data_.get() + begin_, n);
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
  return static_cast<ssize_t>(n);
}

bool ReadAheadTable::attach(int fd, std::size_t capacity) {
  if (fd < 0 || fd >= kMaxFd) return false;
  std::unique_ptr<ReadAhead> fresh;
  try {
    fresh = std::make_unique<ReadAhead>(capacity);
  } catch (const std::bad_alloc&) {
    detach(fd);  // unbuffered is still correct
    return false;
  }
  delete slots_[static_cast<std::size_t>(fd)].exchange(fresh.release(), std::memory_order_acq_rel);  // NOLINT
  return true;
}

void ReadAheadTable::detach(int fd) noexcept {
  if (find(fd) == nullptr) return;  // the common case (every close() of the process): no atomic write
  delete slots_[static_cast<std::size_t>(fd)].exchange(nullptr, std::memory_order_acq_rel);  // NOLINT
}

ReadAheadTable::~ReadAheadTable() {
  for (int fd = 0; fd < kMaxFd; ++fd) detach(fd);
}

}  // namespace chainmail::milter
