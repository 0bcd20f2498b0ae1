#include "common/time_text.h"

#include <gtest/gtest.h>

namespace osb {
namespace {

TEST(Duration, SecondsAndSuffixes) {
  EXPECT_EQ(*ParseDurationSeconds("f", "86400"), 86400);
  EXPECT_EQ(*ParseDurationSeconds("f", "90s"), 90);
  EXPECT_EQ(*ParseDurationSeconds("f", "30m"), 1800);
  EXPECT_EQ(*ParseDurationSeconds("f", "24h"), 86400);
  EXPECT_EQ(*ParseDurationSeconds("f", "7d"), 604800);
}

TEST(Duration, JunkIsAnErrorNamingTheField) {
  for (const char* bad : {"", "h", "0", "-5", "1.5h", "10x", "5 h", "99999999999", "9999999d"}) {
    auto r = ParseDurationSeconds("--max-sandbox-lifetime", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("--max-sandbox-lifetime"), std::string::npos);
  }
}

}  // namespace
}  // namespace osb
