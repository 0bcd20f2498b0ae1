// The one percent-encoder (common/percent_encoding.h): RFC 3986 unreserved
// bytes pass, everything else is %XX upper-case; '/' only with keep_slash.
#include "common/percent_encoding.h"

#include <gtest/gtest.h>

namespace osb {
namespace {

TEST(PercentEncode, UnreservedPassEverythingElseIsUpperCaseHex) {
  EXPECT_EQ(PercentEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(PercentEncode("a b+c&d=e/f?g#h%"), "a%20b%2Bc%26d%3De%2Ff%3Fg%23h%25");
  EXPECT_EQ(PercentEncode(std::string("\0\x7f\x80\xff", 4)), "%00%7F%80%FF");
  EXPECT_EQ(PercentEncode("caf\xc3\xa9"), "caf%C3%A9");
  EXPECT_EQ(PercentEncode("*!'()"), "%2A%21%27%28%29");  // reserved in RFC 3986, so encoded (SigV4 too)
}

TEST(PercentEncode, KeepSlashKeepsOnlySlash) {
  EXPECT_EQ(PercentEncode("/a b/c", true), "/a%20b/c");
  EXPECT_EQ(PercentEncode("/a b/c", false), "%2Fa%20b%2Fc");
  EXPECT_EQ(PercentEncode("", true), "");
}

}  // namespace
}  // namespace osb
