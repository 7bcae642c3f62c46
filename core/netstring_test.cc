#include "core/netstring.h"

#include <gtest/gtest.h>

namespace chainmail {
namespace {

TEST(Netstring, Encodes) {
  EXPECT_EQ(netstring_encode("hello world!"), "12:hello world!,");
  EXPECT_EQ(netstring_encode(""), "0:,");
}

TEST(Netstring, DecodesIncrementallyAndInSequence) {
  NetstringDecoder d(100);
  std::string out;
  const std::string wire = "5:route,3:a b,0:,";
  for (char c : wire.substr(0, 4)) {
    d.feed(std::string(1, c));
    EXPECT_EQ(d.next(out), NetstringDecoder::Status::need_more);
  }
  d.feed(wire.substr(4));
  ASSERT_EQ(d.next(out), NetstringDecoder::Status::complete);
  EXPECT_EQ(out, "route");
  ASSERT_EQ(d.next(out), NetstringDecoder::Status::complete);
  EXPECT_EQ(out, "a b");
  ASSERT_EQ(d.next(out), NetstringDecoder::Status::complete);
  EXPECT_EQ(out, "");
  EXPECT_EQ(d.next(out), NetstringDecoder::Status::need_more);
  EXPECT_TRUE(d.idle());
}

TEST(Netstring, KeepsBinaryPayload) {
  NetstringDecoder d(100);
  d.feed(std::string("3:a\0b,", 6));
  std::string out;
  ASSERT_EQ(d.next(out), NetstringDecoder::Status::complete);
  EXPECT_EQ(out, std::string("a\0b", 3));
}

TEST(Netstring, RejectsMalformed) {
  const std::vector<std::string> bad = {"x:abc,", ":abc,", "3:abcd",
                                        "01:a,",  "101:",  "99999999999999999999:"};
  for (const auto& wire : bad) {
    NetstringDecoder d(100);
    d.feed(wire);
    std::string out;
    EXPECT_EQ(d.next(out), NetstringDecoder::Status::error) << wire;
    EXPECT_FALSE(d.error().empty()) << wire;
    EXPECT_EQ(d.next(out), NetstringDecoder::Status::error) << "errors are sticky: " << wire;
  }
}

}  // namespace
}  // namespace chainmail
