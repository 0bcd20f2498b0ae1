#include "cli/secret_input.h"

#include <gtest/gtest.h>

#include <sstream>

namespace osb::cli {
namespace {

Result<std::string> Read(const std::string& bytes, size_t max = kMaxSecretBytes) {
  std::istringstream in(bytes);
  return ReadSecretFromStream(in, max);
}

TEST(ReadSecretFromStream, StripsExactlyOneTrailingNewline) {
  EXPECT_EQ(*Read("abc\n"), "abc");
  EXPECT_EQ(*Read("abc"), "abc");
  EXPECT_EQ(*Read("abc\n\n"), "abc\n");
  EXPECT_EQ(*Read("abc\r\n"), "abc\r");
  EXPECT_EQ(*Read(" a b \t"), " a b \t");
  EXPECT_EQ(*Read(std::string("a\0b\n", 4)), std::string("a\0b", 3));
}

TEST(ReadSecretFromStream, RefusesEmptyInput) {
  for (const char* empty : {"", "\n"}) {
    auto r = Read(empty);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
    EXPECT_NE(r.error().message.find("empty"), std::string::npos);
  }
}

TEST(ReadSecretFromStream, EnforcesTheLimitAfterStrippingTheNewline) {
  EXPECT_TRUE(Read(std::string(10, 'x'), 10).ok());
  EXPECT_TRUE(Read(std::string(10, 'x') + "\n", 10).ok());
  auto r = Read(std::string(11, 'x'), 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find("xxx"), std::string::npos);
  EXPECT_FALSE(Read(std::string(1 << 20, 'x'), 10).ok());
  EXPECT_EQ(Read(std::string(kMaxSecretBytes, 'y'))->size(), kMaxSecretBytes);
}

}  // namespace
}  // namespace osb::cli
