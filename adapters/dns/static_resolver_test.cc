// static_resolver_test.cc - the in-memory Resolver the SPF suite and unit tests are built on.
#include "adapters/dns/static_resolver.h"

#include <gtest/gtest.h>

#include "adapters/dns/rdata.h"

namespace chainmail::dns {
namespace {

using Status = Answer::Status;

TEST(StaticResolver, ThreeOutcomesAndTrouble) {
  StaticResolver zone;
  zone.add("Example.ORG.", RrType::txt, encode_txt("v=spf1 -all"));
  zone.add("example.org", RrType::txt, encode_txt("other"));
  zone.add("example.org", RrType::a, std::string("\xc0\x00\x02\x01", 4));
  zone.add_name("empty.example.org");
  zone.set_trouble("slow.example.org", RrType::txt);

  struct Case {
    const char* name;
    RrType type;
    Status want;
    std::size_t records;
  };
  const Case cases[] = {
      {"example.org", RrType::txt, Status::found, 2},
      {"EXAMPLE.org.", RrType::a, Status::found, 1},  // case-insensitive, trailing dot ignored
      {"example.org", RrType::mx, Status::nodata, 0},
      {"empty.example.org", RrType::a, Status::nodata, 0},
      {"missing.example.org", RrType::a, Status::nxdomain, 0},
      {"slow.example.org", RrType::txt, Status::trouble, 0},
      {"slow.example.org", RrType::a, Status::nxdomain, 0},  // trouble is per name and type
  };
  for (const auto& c : cases) {
    const Answer a = zone.resolve(c.name, c.type);
    EXPECT_EQ(a.status, c.want) << c.name << " type " << static_cast<int>(c.type);
    EXPECT_EQ(a.records.size(), c.records) << c.name;
    EXPECT_FALSE(a.secure);
  }
  EXPECT_EQ(zone.queries(), std::size(cases));
  EXPECT_FALSE(zone.resolve("slow.example.org", RrType::txt).why.empty());
}

TEST(StaticResolver, RecordsComeBackInInsertionOrder) {
  StaticResolver zone;
  for (int i = 0; i < 5; ++i)
    zone.add("mx.example", RrType::mx, encode_mx(static_cast<std::uint16_t>(i), "h"));
  const Answer a = zone.resolve("mx.example", RrType::mx);
  ASSERT_EQ(a.records.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(decode_mx(a.records[static_cast<std::size_t>(i)])->preference, i);
}

}  // namespace
}  // namespace chainmail::dns
