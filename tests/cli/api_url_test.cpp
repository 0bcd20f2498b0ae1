#include "cli/api_url.h"

#include <gtest/gtest.h>

namespace osb::cli {
namespace {

TEST(ApiUrl, ParsesHostPortAndDefaults) {
  auto u = ParseApiUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->base_path, "");

  auto s = ParseApiUrl("https://osb.example.com/");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->tls);
  EXPECT_EQ(s->port, "443");
  EXPECT_EQ(s->base_path, "");
  EXPECT_EQ(ParseApiUrl("http://h")->port, "80");
}

TEST(ApiUrl, KeepsABasePathWithoutTrailingSlash) {
  auto u = ParseApiUrl("https://gw.example.com:8443/osb/v1//");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->base_path, "/osb/v1");
  EXPECT_EQ(u->ToString(), "https://gw.example.com:8443/osb/v1");
}

TEST(ApiUrl, Ipv6NeedsBrackets) {
  auto u = ParseApiUrl("http://[::1]:9000");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->ToString(), "http://[::1]:9000");
  EXPECT_FALSE(ParseApiUrl("http://::1:9000").ok());
}

TEST(ApiUrl, RejectsWhatItCannotUseNamingTheValue) {
  for (const char* bad : {"", "127.0.0.1:8080", "ftp://h", "http://", "http://h:", "http://h:0",
                          "http://h:65536", "http://h:80x", "http://u@h", "http://h/?q", "http://h /",
                          "http://[::1", "http://[::1]x"}) {
    auto r = ParseApiUrl(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
      EXPECT_NE(r.error().message.find(std::string("'") + bad + "'"), std::string::npos) << r.error().message;
    }
  }
}

TEST(ApiUrl, EncodesPathSegments) {
  EXPECT_EQ(EncodePathSegment("demo-1.x_y~"), "demo-1.x_y~");
  EXPECT_EQ(EncodePathSegment("a b/c?d#e%"), "a%20b%2Fc%3Fd%23e%25");
  EXPECT_EQ(EncodePathSegment(".."), "%2E%2E");
  EXPECT_EQ(EncodePathSegment("."), "%2E");
  EXPECT_EQ(EncodePathSegment("\xc3\xa9"), "%C3%A9");
}

}  // namespace
}  // namespace osb::cli
