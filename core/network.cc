// network.cc - see network.h.
#include "core/network.h"

#include <arpa/inet.h>

#include <charconv>

namespace chainmail {

std::optional<IpAddress> parse_ip(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.size() > 5 && (text.substr(0, 5) == "IPv6:" || text.substr(0, 5) == "ipv6:"))
    text.remove_prefix(5);
  if (text.empty() || text.size() > 45) return std::nullopt;
  const std::string s(text);
  IpAddress ip{};
  if (s.find(':') != std::string::npos) {
    if (inet_pton(AF_INET6, s.c_str(), ip.data()) != 1) return std::nullopt;
    return ip;
  }
  std::array<std::uint8_t, 4> v4{};
  if (inet_pton(AF_INET, s.c_str(), v4.data()) != 1) return std::nullopt;
  ip[10] = 0xff;
  ip[11] = 0xff;
  for (std::size_t i = 0; i < 4; ++i) ip[12 + i] = v4[i];
  return ip;
}

bool Network::contains(const IpAddress& ip) const {
  int bits = prefix;
  for (std::size_t i = 0; i < ip.size() && bits > 0; ++i, bits -= 8) {
    const auto mask = static_cast<std::uint8_t>(bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff);
    if ((ip[i] & mask) != (base[i] & mask)) return false;
  }
  return true;
}

std::optional<Network> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  const auto ip = parse_ip(text.substr(0, slash));
  if (!ip) return std::nullopt;
  const bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
  const int width = v4 ? 32 : 128;
  int len = width;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), len);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() || len < 0 || len > width)
      return std::nullopt;
  }
  return Network{*ip, v4 ? len + 96 : len};
}

bool in_networks(const IpAddress& ip, std::span<const Network> networks) {
  for (const auto& n : networks) {
    if (n.contains(ip)) return true;
  }
  return false;
}

}  // namespace chainmail
