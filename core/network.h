// network.h - IP addresses and CIDR networks, for milter.trusted_networks.
//
// IPv4 addresses are held as IPv4-mapped IPv6 (::ffff:a.b.c.d), so "127.0.0.0/8" also matches a client that
// Postfix reports as ::ffff:127.0.0.1. No I/O: parsing uses inet_pton only.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace chainmail {

using IpAddress = std::array<std::uint8_t, 16>;

// "192.0.2.1", "2001:db8::1", "[2001:db8::1]", "IPv6:2001:db8::1" (as in an address literal).
std::optional<IpAddress> parse_ip(std::string_view text);

struct Network {
  IpAddress base{};
  int prefix = 128;  // in IPv6 bits (an IPv4 /8 is stored as /104)
  bool contains(const IpAddress& ip) const;
};

// "ADDR" (a host) or "ADDR/LEN"; nullopt when malformed or LEN out of range.
std::optional<Network> parse_cidr(std::string_view text);

bool in_networks(const IpAddress& ip, std::span<const Network> networks);

}  // namespace chainmail
