// network_test.cc - addresses and CIDR matching for milter.trusted_networks.
#include "core/network.h"

#include <gtest/gtest.h>

namespace chainmail {
namespace {

TEST(Network, ParsesAddressesInEveryFormPostfixSends) {
  EXPECT_TRUE(parse_ip("192.0.2.1"));
  EXPECT_TRUE(parse_ip("2001:db8::1"));
  EXPECT_TRUE(parse_ip("[2001:db8::1]"));
  EXPECT_TRUE(parse_ip("IPv6:2001:db8::1"));
  EXPECT_EQ(parse_ip("::ffff:192.0.2.1"), parse_ip("192.0.2.1"));
  for (const auto* bad : {"", "192.0.2", "192.0.2.256", "example.org", "1::2::3", "[192.0.2.1"})
    EXPECT_FALSE(parse_ip(bad)) << bad;
}

TEST(Network, MatchesByPrefix) {
  struct Case {
    const char* net;
    const char* ip;
    bool in;
  };
  const Case cases[] = {
      {"127.0.0.0/8", "127.1.2.3", true},
      {"127.0.0.0/8", "128.0.0.1", false},
      {"127.0.0.0/8", "::ffff:127.0.0.1", true},
      {"::1/128", "::1", true},
      {"::1/128", "::2", false},
      {"192.0.2.0/25", "192.0.2.127", true},
      {"192.0.2.0/25", "192.0.2.128", false},
      {"10.0.0.1", "10.0.0.1", true},
      {"10.0.0.1", "10.0.0.2", false},
      {"0.0.0.0/0", "203.0.113.9", true},
      {"0.0.0.0/0", "2001:db8::1", false},
      {"2001:db8::/32", "2001:db8:ffff::1", true},
  };
  for (const auto& c : cases) {
    const auto net = parse_cidr(c.net);
    ASSERT_TRUE(net) << c.net;
    EXPECT_EQ(net->contains(*parse_ip(c.ip)), c.in) << c.net << " " << c.ip;
  }
}

TEST(Network, RefusesMalformedNetworks) {
  for (const auto* bad : {"127.0.0.0/33", "::/129", "127.0.0.0/", "127.0.0.0/-1", "127.0.0.0/8x", "/8"})
    EXPECT_FALSE(parse_cidr(bad)) << bad;
}

}  // namespace
}  // namespace chainmail
