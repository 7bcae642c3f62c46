// rdata.cc - see rdata.h.
#include "adapters/dns/rdata.h"

namespace chainmail::dns {
namespace {

// Reads one uncompressed name starting at `pos`; advances pos past it. Compression pointers are refused:
// resolver.h promises uncompressed data, so one here means a broken answer.
std::optional<std::string> read_name(std::string_view rdata, std::size_t& pos) {
  std::string name;
  while (true) {
    if (pos >= rdata.size()) return std::nullopt;
    const auto len = static_cast<unsigned char>(rdata[pos++]);
    if (len == 0) break;
    if (len > 63 || pos + len > rdata.size()) return std::nullopt;
    if (!name.empty()) name += '.';
    name.append(rdata.substr(pos, len));
    pos += len;
    if (name.size() > 253) return std::nullopt;
  }
  return name;
}

}  // namespace

std::optional<std::string> decode_txt(std::string_view rdata) {
  std::string text;
  std::size_t pos = 0;
  while (pos < rdata.size()) {
    const auto len = static_cast<unsigned char>(rdata[pos++]);
    if (pos + len > rdata.size()) return std::nullopt;
    text.append(rdata.substr(pos, len));
    pos += len;
  }
  return text;
}

std::optional<std::string> decode_name(std::string_view rdata) {
  std::size_t pos = 0;
  auto name = read_name(rdata, pos);
  if (!name || pos != rdata.size()) return std::nullopt;
  return name;
}

std::optional<Mx> decode_mx(std::string_view rdata) {
  if (rdata.size() < 3) return std::nullopt;
  Mx mx;
  mx.preference = static_cast<std::uint16_t>((static_cast<unsigned char>(rdata[0]) << 8) |
                                             static_cast<unsigned char>(rdata[1]));
  std::size_t pos = 2;
  auto name = read_name(rdata, pos);
  if (!name || pos != rdata.size()) return std::nullopt;
  mx.exchange = std::move(*name);
  return mx;
}

std::string encode_txt(std::string_view text) {
  std::string out;
  do {
    const auto chunk = text.substr(0, 255);
    out += static_cast<char>(chunk.size());
    out += chunk;
    text.remove_prefix(chunk.size());
  } while (!text.empty());
  return out;
}

std::string encode_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out;
  while (!name.empty()) {
    const auto dot = name.find('.');
    const auto label = name.substr(0, dot);
    out += static_cast<char>(label.size());
    out += label;
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  out += '\0';
  return out;
}

std::string encode_mx(std::uint16_t preference, std::string_view exchange) {
  std::string out;
  out += static_cast<char>(preference >> 8);
  out += static_cast<char>(preference & 0xff);
  out += encode_name(exchange);
  return out;
}

}  // namespace chainmail::dns
