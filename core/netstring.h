// netstring.h - netstrings (D. J. Bernstein), the framing of Postfix's socketmap protocol.
//
// "12:hello world!," carries "hello world!". The decoder is incremental (feed it what the socket gave) and
// bounded: a length prefix above `max_size`, a non-digit, a leading zero or a missing comma is an error and
// the stream cannot be resynchronised, so the caller drops the connection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace chainmail {

std::string netstring_encode(std::string_view payload);

class NetstringDecoder {
 public:
  explicit NetstringDecoder(std::size_t max_size) : max_size_(max_size) {}

  enum class Status { complete, need_more, error };

  // Appends bytes received; then call next() until it stops returning complete.
  void feed(std::string_view bytes) { buf_.append(bytes); }

  // Extracts the next complete netstring into `out`.
  Status next(std::string& out);

  const std::string& error() const { return error_; }
  bool idle() const { return buf_.empty(); }  // no partial request pending

 private:
  std::size_t max_size_;
  std::string buf_;
  std::string error_;
};

}  // namespace chainmail
