// rdata_test.cc - the record-data codecs: round trips, and malformed data refused rather than misread.
#include "adapters/dns/rdata.h"

#include <gtest/gtest.h>

#include <string>

namespace chainmail::dns {
namespace {

using namespace std::string_literals;

TEST(Rdata, TxtJoinsCharacterStringsWithNothingBetween) {
  struct Case {
    std::string rdata;
    std::optional<std::string> want;
  };
  const Case cases[] = {
      {"\x06v=spf1"s, "v=spf1"},
      {"\x06v=spf1\x04 -al\x01l"s, "v=spf1 -all"},
      {"\x00"s, ""},                 // one empty string
      {""s, ""},                     // no strings at all (illegal, but must not crash)
      {"\x06v=spf"s, std::nullopt},  // length runs past the end
      {"\x02ok\x03"
       "ab"s,
       std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(decode_txt(c.rdata), c.want) << "rdata size " << c.rdata.size();
  }
}

TEST(Rdata, TxtEncodingSplitsAt255AndRoundTrips) {
  const std::string text(600, 'x');
  const std::string rdata = encode_txt(text);
  ASSERT_EQ(rdata.size(), 600u + 3u);  // 255 + 255 + 90, each with a length byte
  EXPECT_EQ(static_cast<unsigned char>(rdata[0]), 255);
  EXPECT_EQ(static_cast<unsigned char>(rdata[256]), 255);
  EXPECT_EQ(static_cast<unsigned char>(rdata[512]), 90);
  EXPECT_EQ(decode_txt(rdata), text);
  EXPECT_EQ(encode_txt(""), "\x00"s);
}

TEST(Rdata, NamesDecodeAndRefuseCompressionAndOverruns) {
  struct Case {
    std::string rdata;
    std::optional<std::string> want;
  };
  const Case cases[] = {
      {"\x04mail\x07"
       "example\x03org\x00"s,
       "mail.example.org"},
      {"\x00"s, ""},  // the root
      {"\x04Mail\x02"
       "Ex\x00"s,
       "Mail.Ex"},                  // case kept as sent
      {"\xc0\x0c"s, std::nullopt},  // a compression pointer
      {"\x04mail\xc0\x0c"s, std::nullopt},
      {"\x04mai"s, std::nullopt},                               // label runs past the end
      {"\x04mail"s, std::nullopt},                              // no terminating root label
      {"\x04mail\x00\x00"s, std::nullopt},                      // trailing bytes
      {"\x40" + std::string(64, 'a') + "\x00"s, std::nullopt},  // label of 64
  };
  for (const auto& c : cases) {
    EXPECT_EQ(decode_name(c.rdata), c.want) << "rdata size " << c.rdata.size();
  }
}

TEST(Rdata, MxRoundTripsAndRefusesShortData) {
  const auto mx = decode_mx(encode_mx(10, "mx1.example.org"));
  ASSERT_TRUE(mx);
  EXPECT_EQ(mx->preference, 10);
  EXPECT_EQ(mx->exchange, "mx1.example.org");

  const auto high = decode_mx(encode_mx(65535, "a.b"));
  ASSERT_TRUE(high);
  EXPECT_EQ(high->preference, 65535);

  const auto null_mx = decode_mx(encode_mx(0, "."));  // RFC 7505 null MX
  ASSERT_TRUE(null_mx);
  EXPECT_EQ(null_mx->exchange, "");

  EXPECT_FALSE(decode_mx("\x00\x0a"s));
  EXPECT_FALSE(decode_mx("\x00\x0a\xc0\x0c"s));
}

TEST(Rdata, EncodeNameDropsTrailingDot) {
  EXPECT_EQ(encode_name("a.example."), encode_name("a.example"));
  EXPECT_EQ(encode_name(""), "\x00"s);
  EXPECT_EQ(encode_name("."), "\x00"s);
  EXPECT_EQ(decode_name(encode_name("x.y.z")), "x.y.z");
}

}  // namespace
}  // namespace chainmail::dns
