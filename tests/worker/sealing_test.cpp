#include "worker/sealing.h"

#include <gtest/gtest.h>

#include <set>

namespace osb::worker {
namespace {

TEST(Sealing, TokensHaveTheDocumentedShapeAndAreUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const std::string t = MintToken();
    ASSERT_EQ(t.size(), 43u);
    ASSERT_TRUE(IsSealedToken(t)) << t;
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(Sealing, RecognisesOnlyExactTokens) {
  EXPECT_TRUE(IsSealedToken("osb_sealed_0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(IsSealedToken("osb_sealed_0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(IsSealedToken("osb_sealed_0123456789abcdef0123456789abcde"));
  EXPECT_FALSE(IsSealedToken("osb_sealed_0123456789abcdef0123456789abcdef0"));
  EXPECT_FALSE(IsSealedToken("osb_sealeX_0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(IsSealedToken(""));
}

TEST(Sealing, PlainEnvsWinOverTokens) {
  const auto env = ComposeSandboxEnv(
      {{"MODE", "dev"}, {"API_KEY", "plain-override"}},
      {{"API_KEY", "osb_sealed_11111111111111111111111111111111"},
       {"DB_PASSWORD", "osb_sealed_22222222222222222222222222222222"}});
  EXPECT_EQ(env.size(), 3u);
  EXPECT_EQ(env.at("MODE"), "dev");
  EXPECT_EQ(env.at("API_KEY"), "plain-override");
  EXPECT_EQ(env.at("DB_PASSWORD"), "osb_sealed_22222222222222222222222222222222");
}

}  // namespace
}  // namespace osb::worker
