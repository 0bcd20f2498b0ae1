#include "common/port.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace osb
