#include "sandbox/allowlist.h"

#include <gtest/gtest.h>

namespace osb::sandbox {
namespace {

TEST(AllowlistTest, EmptyAllowsEverything) { EXPECT_TRUE(HostAllowed({}, "anything.example")); }

TEST(AllowlistTest, ExactNamesAreCaseInsensitiveAndIgnoreOneTrailingDot) {
  std::vector<std::string> list = {"api.example.com", "Other.Example.ORG."};
  EXPECT_TRUE(HostAllowed(list, "api.example.com"));
  EXPECT_TRUE(HostAllowed(list, "API.Example.Com."));
  EXPECT_TRUE(HostAllowed(list, "other.example.org"));
  EXPECT_FALSE(HostAllowed(list, "api.example.com.."));
  EXPECT_FALSE(HostAllowed(list, "x.api.example.com"));
  EXPECT_FALSE(HostAllowed(list, "example.com"));
  EXPECT_FALSE(HostAllowed(list, ""));
}

TEST(AllowlistTest, WildcardMatchesSubdomainsOnly) {
  std::vector<std::string> list = {"*.example.com"};
  EXPECT_TRUE(HostAllowed(list, "a.example.com"));
  EXPECT_TRUE(HostAllowed(list, "a.b.EXAMPLE.com."));
  EXPECT_FALSE(HostAllowed(list, "example.com"));
  EXPECT_FALSE(HostAllowed(list, "badexample.com"));
  EXPECT_FALSE(HostAllowed(list, ".example.com"));
}

TEST(AllowlistTest, EntriesWithAPortStillResolveTheirName) {
  std::vector<std::string> list = {"api.example.com:443", "*.example.org:8443", "[::1]:80"};
  EXPECT_TRUE(HostAllowed(list, "api.example.com"));
  EXPECT_TRUE(HostAllowed(list, "x.example.org"));
  EXPECT_FALSE(HostAllowed(list, "api.example.com:443"));  // a DNS name has no port
  EXPECT_FALSE(HostAllowed(list, "example.org"));
}

}  // namespace
}  // namespace osb::sandbox
