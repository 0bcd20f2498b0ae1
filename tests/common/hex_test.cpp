#include "common/hex.h"

#include <gtest/gtest.h>

namespace osb {
namespace {

TEST(Hex, EncodesLowerCaseAndRoundTrips) {
  const std::vector<uint8_t> bytes = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(HexEncode(bytes), "0001abff");
  EXPECT_EQ(*HexDecode("0001ABff"), bytes);
  EXPECT_TRUE(HexDecode("")->empty());
}

TEST(Hex, RejectsOddLengthAndNonHex) {
  EXPECT_FALSE(HexDecode("abc").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
  EXPECT_FALSE(HexDecode("0g").has_value());
  EXPECT_FALSE(HexDecode(std::string("0\0", 2)).has_value());
}

}  // namespace
}  // namespace osb
