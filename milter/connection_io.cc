// connection_io.cc - see connection_io.h.
#include "milter/connection_io.h"

#include <libmilter/mfdef.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

namespace chainmail::milter {

ReadAhead::ReadAhead(std::size_t capacity)
    : data_(std::make_unique<char[]>(capacity)),  // NOLINT(cppcoreguidelines-avoid-c-arrays)
      capacity_(capacity) {}

ssize_t ReadAhead::read(int fd, void* out, std::size_t count, ReadFn real_read) noexcept {
  if (count == 0) return real_read(fd, out, 0);
  if (begin_ == end_ && error_ != 0) {
    errno = std::exchange(error_, 0);
    return -1;
  }
  if (begin_ == end_ && eof_) return 0;  // end of file stays end of file, as in the kernel
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

namespace {

// The replies that edit the message. libmilter sends them only at end of message, each followed in the end
// by the reply that ends the step (continue, accept, reject, ...), which the MTA waits for.
bool is_edit(char command) {
  switch (command) {
    case SMFIR_ADDRCPT:
    case SMFIR_DELRCPT:
    case SMFIR_ADDRCPT_PAR:
    case SMFIR_CHGFROM:
    case SMFIR_ADDHEADER:
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER:
    case SMFIR_REPLBODY:
    case SMFIR_QUARANTINE:
      return true;
    default:
      return false;
  }
}

// The command byte of a whole reply as libmilter's mi_wr_cmd() lays it out (iov[0]: the length in network
// order and the command; then the data, which the length counts with the command), else 0. A retry of a
// partly written reply never matches, so its rest is never held back.
char whole_reply_command(const iovec* iov, int iovcnt) {
  constexpr std::size_t kHead = 5;
  if (iovcnt < 1 || iov[0].iov_len != kHead || iov[0].iov_base == nullptr) return 0;
  const auto* head = static_cast<const unsigned char*>(iov[0].iov_base);
  const std::uint32_t length = (std::uint32_t{head[0]} << 24U) | (std::uint32_t{head[1]} << 16U) |
                               (std::uint32_t{head[2]} << 8U) | std::uint32_t{head[3]};
  std::size_t data = 0;
  for (int i = 1; i < iovcnt; ++i) data += iov[i].iov_len;
  if (length != data + 1) return 0;
  return static_cast<char>(head[4]);
}

std::size_t total_length(const iovec* iov, int iovcnt) {
  std::size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  return total;
}

}  // namespace

ssize_t ReplyBatch::writev(int fd, const iovec* iov, int iovcnt, SendFn send) noexcept {
  const std::size_t total = total_length(iov, iovcnt);
  if (!blocked_ && is_edit(whole_reply_command(iov, iovcnt)) && held_.size() + total <= kMaxHeld) {
    const std::size_t before = held_.size();
    try {
      for (int i = 0; i < iovcnt; ++i)
        held_.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      return static_cast<ssize_t>(total);
    } catch (const std::bad_alloc&) {
      held_.resize(before);  // short of memory: this reply is written now instead
    }
  }
  if (held_.empty()) {
    const ssize_t sent = send(fd, iov, iovcnt);
    if ((sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ||
        (sent >= 0 && static_cast<std::size_t>(sent) < total)) {
      blocked_ = true;
    }
    return sent;
  }
  // What is held goes first, with this reply when the vector has room (libmilter's always does).
  constexpr int kMaxVector = 16;
  std::array<iovec, kMaxVector> vector{};
  vector[0] = {held_.data(), held_.size()};
  const int count = iovcnt < kMaxVector ? iovcnt + 1 : 1;
  for (int i = 1; i < count; ++i) vector[static_cast<std::size_t>(i)] = iov[i - 1];
  const ssize_t sent = send(fd, vector.data(), count);
  if (sent < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) blocked_ = true;
    return -1;
  }
  const auto written = static_cast<std::size_t>(sent);
  if (written < held_.size() || (written == held_.size() && total > 0)) {
    held_.erase(0, written);
    blocked_ = true;  // the socket is full, or the vector had no room for this reply
    errno = EAGAIN;
    return -1;
  }
  const std::size_t of_this_reply = written - held_.size();
  held_.clear();
  if (of_this_reply < total) blocked_ = true;
  return static_cast<ssize_t>(of_this_reply);
}

void ReadAhead::fill(int fd, ReadFn nonblocking_read) noexcept {
  if (readable()) return;
  const int saved_errno = errno;
  const ssize_t got = nonblocking_read(fd, data_.get(), capacity_);
  if (got > 0) {
    begin_ = 0;
    end_ = static_cast<std::size_t>(got);
  } else if (got == 0) {
    eof_ = true;
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    error_ = errno;
  }
  errno = saved_errno;  // poll() succeeded; nothing of this shows until the read()
}

bool ConnectionTable::attach(int fd, std::size_t read_capacity) {
  if (fd < 0 || fd >= kMaxFd) return false;
  std::unique_ptr<ConnectionIo> fresh;
  try {
    fresh = std::make_unique<ConnectionIo>(read_capacity);
  } catch (const std::bad_alloc&) {
    detach(fd);  // unbuffered is still correct
    return false;
  }
  delete slots_[static_cast<std::size_t>(fd)].exchange(fresh.release(), std::memory_order_acq_rel);  // NOLINT
  return true;
}

void ConnectionTable::detach(int fd) noexcept {
  if (find(fd) == nullptr) return;  // the common case (every close() of the process): no atomic write
  delete slots_[static_cast<std::size_t>(fd)].exchange(nullptr, std::memory_order_acq_rel);  // NOLINT
}

ConnectionTable::~ConnectionTable() {
  for (int fd = 0; fd < kMaxFd; ++fd) detach(fd);
}

}  // namespace chainmail::milter
