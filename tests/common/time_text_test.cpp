// RFC 3339 times and unit durations as users type them (API key expiry).
#include "common/time_text.h"

#include <gtest/gtest.h>

namespace osb {
namespace {

int64_t Ms(std::string_view s) {
  auto t = ParseRfc3339(s);
  EXPECT_TRUE(t.has_value()) << s;
  return t ? std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count() : -1;
}

TEST(TimeText, ParsesRfc3339WithOffsetsAndFractions) {
  EXPECT_EQ(Ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(Ms("2026-11-30T13:00:00Z"), 1796043600000);
  EXPECT_EQ(Ms("2026-11-30T15:00:00+02:00"), 1796043600000);
  EXPECT_EQ(Ms("2026-11-30t12:30:00.250-00:30"), 1796043600250);
  EXPECT_EQ(Ms("2024-02-29T00:00:00.123456789Z") % 1000, 123);
  for (const char* bad : {"", "2026-11-30", "2026-11-30T13:00:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                          "2026-11-30T24:00:00Z", "2026-11-30T13:00:60Z", "1969-12-31T23:59:59Z",
                          "2200-01-01T00:00:00Z", "2026-11-30T13:00:00.Z", "2026-11-30T13:00:00+2:00",
                          "2026-11-30T13:00:00Z ", "２026-11-30T13:00:00Z", "2026-11-30T13:00:00.1234567890Z"}) {
    EXPECT_FALSE(ParseRfc3339(bad).has_value()) << bad;
  }
}

TEST(TimeText, ParsesUnitDurations) {
  EXPECT_EQ(ParseDuration("90s"), std::chrono::seconds(90));
  EXPECT_EQ(ParseDuration("45m"), std::chrono::minutes(45));
  EXPECT_EQ(ParseDuration("12h"), std::chrono::hours(12));
  EXPECT_EQ(ParseDuration("30d"), std::chrono::hours(24 * 30));
  for (const char* bad : {"", "d", "30", "0d", "-1d", "1w", "1.5h", " 1d", "1D", "99999999999d"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
  EXPECT_FALSE(ParseDuration("3651d", std::chrono::hours(24 * 3650)).has_value());
  EXPECT_TRUE(ParseDuration("3650d", std::chrono::hours(24 * 3650)).has_value());
}

}  // namespace
}  // namespace osb
