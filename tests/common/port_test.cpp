#include "common/port.h"

#include <gtest/gtest.h>

#include <string>

namespace osb {
namespace {

TEST(Port, AcceptsOneTo65535) {
  uint16_t p = 7;
  EXPECT_TRUE(ParsePort("1", &p));
  EXPECT_EQ(p, 1);
  EXPECT_TRUE(ParsePort("443", &p));
  EXPECT_EQ(p, 443);
  EXPECT_TRUE(ParsePort("65535", &p));
  EXPECT_EQ(p, 65535);
}

TEST(Port, RefusesEverythingElseAndLeavesThePortAlone) {
  for (const char* bad : {"", "0", "00", "0443", "00443", "65536", "99999", "100000", "-1", "+443", " 443", "443 ",
                          "44 3", "4a3", "0x1bb", "443\n"}) {
    uint16_t p = 7;
    EXPECT_FALSE(ParsePort(bad, &p)) << bad;
    EXPECT_EQ(p, 7) << bad;
  }
  uint16_t p = 7;
  EXPECT_FALSE(ParsePort(std::string_view("44\0" "3", 4), &p));
}

// The operator's flags keep their old syntax: leading zeros are the same
// port (the proxy is the only reader), 0 only where it means "any port".
TEST(PortFlag, AcceptsLeadingZerosAndZeroOnlyWhenAsked) {
  uint16_t p = 7;
  EXPECT_TRUE(ParsePortFlag("08080", &p));
  EXPECT_EQ(p, 8080);
  EXPECT_TRUE(ParsePortFlag("00443", &p));
  EXPECT_EQ(p, 443);
  EXPECT_TRUE(ParsePortFlag("65535", &p));
  EXPECT_EQ(p, 65535);
  p = 7;
  EXPECT_FALSE(ParsePortFlag("0", &p));
  EXPECT_FALSE(ParsePortFlag("00000", &p));
  EXPECT_EQ(p, 7);
  EXPECT_TRUE(ParsePortFlag("0", &p, {.allow_zero = true}));
  EXPECT_EQ(p, 0);
  p = 7;
  EXPECT_TRUE(ParsePortFlag("00000", &p, {.allow_zero = true}));
  EXPECT_EQ(p, 0);
}

TEST(PortFlag, RefusesEverythingElseAndLeavesThePortAlone) {
  for (const char* bad : {"", "000443", "65536", "99999", "100000", "-1", "+443", " 443", "443 ", "44 3", "4a3",
                          "0x1bb", "443\n"}) {
    for (bool allow_zero : {false, true}) {
      uint16_t p = 7;
      EXPECT_FALSE(ParsePortFlag(bad, &p, {.allow_zero = allow_zero})) << bad;
      EXPECT_EQ(p, 7) << bad;
    }
  }
}

// The strict parser (request authorities, allowlist patterns) and the flag
// parser differ only on leading zeros and zero.
TEST(PortFlag, AgreesWithTheStrictParserOnEveryOtherText) {
  for (uint32_t v = 0; v <= 99999; ++v) {
    for (const std::string& text : {std::to_string(v), std::string(v < 10000 ? "0" : "") + std::to_string(v)}) {
      uint16_t strict = 0, flag = 0;
      const bool s = ParsePort(text, &strict);
      const bool f = ParsePortFlag(text, &flag);
      if (text[0] == '0') {
        EXPECT_FALSE(s) << text;
        EXPECT_EQ(f, v >= 1 && v <= 65535) << text;
      } else {
        ASSERT_EQ(s, f) << text;
        if (s) {
          ASSERT_EQ(strict, flag) << text;
        }
      }
    }
  }
}

}  // namespace
}  // namespace osb
