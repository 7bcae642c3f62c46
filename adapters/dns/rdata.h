// rdata.h - decoding and encoding the record data resolver.h carries (uncompressed wire format).
//
// Decoders return false on malformed data (a short or overlong field); callers treat that as a bad answer.
// Names come back as presentation text without the trailing dot, ASCII letters kept as sent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chainmail::dns {

// TXT: the record's character-strings joined with nothing between them (RFC 7208 3.3, RFC 6376 3.6.2.2).
std::optional<std::string> decode_txt(std::string_view rdata);
// PTR, NS, CNAME: one domain name.
std::optional<std::string> decode_name(std::string_view rdata);
struct Mx {
  std::uint16_t preference = 0;
  std::string exchange;
};
std::optional<Mx> decode_mx(std::string_view rdata);

// Encoders, for StaticResolver and tests. TXT splits text into 255-byte character-strings.
std::string encode_txt(std::string_view text);
std::string encode_name(std::string_view name);  // "" or "." is the root
std::string encode_mx(std::uint16_t preference, std::string_view exchange);

}  // namespace chainmail::dns
