#include "netstring.h"

namespace chainmail {

std::string netstring_encode(std::string_view payload) {
  std::string out = std::to_string(payload.size());
  out += ':';
  out += payload;
  out += ',';
  return out;
}

NetstringDecoder::Status NetstringDecoder::next(std::string& out) {
  if (!error_.empty()) return Status::error;
  std::size_t len = 0;
  std::size_t i = 0;
  for (; i < buf_.size() && buf_[i] != ':'; ++i) {
    const char c = buf_[i];
    if (c < '0' || c > '9') {
      error_ = "netstring length is not a number";
      return Status::error;
    }
    if (i == 1 && buf_[0] == '0') {
      error_ = "netstring length has a leading zero";
      return Status::error;
    }
    len = len * 10 + static_cast<std::size_t>(c - '0');
    if (len > max_size_) {
      error_ = "netstring longer than " + std::to_string(max_size_) + " octets";
      return Status::error;
    }
  }
  if (i == buf_.size()) return Status::need_more;  // length prefix not finished yet
  if (i == 0) {
    error_ = "netstring without a length";
    return Status::error;
  }
  const std::size_t end = i + 1 + len;  // position of the comma
  if (buf_.size() <= end) return Status::need_more;
  if (buf_[end] != ',') {
    error_ = "netstring not terminated by a comma";
    return Status::error;
  }
  out.assign(buf_, i + 1, len);
  buf_.erase(0, end + 1);
  return Status::complete;
}

}  // namespace chainmail
