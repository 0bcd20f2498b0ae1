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

TEST(Sealing, EachKindGetsItsEnvironmentAndNeverItsSecretFields) {
  auto value = SealSecret("", "API_KEY", "");
  ASSERT_TRUE(value);
  ASSERT_EQ(value->env.size(), 1u);
  EXPECT_EQ(value->env[0], (std::pair<std::string, std::string>{"API_KEY", value->token}));
  EXPECT_TRUE(IsSealedToken(value->token));
  EXPECT_TRUE(value->aux_token.empty());

  const std::string hmac = R"({"key":"hmac-SECRET-key","header":"X-Sig"})";
  auto h = SealSecret("hmac", "SIG", hmac);
  ASSERT_TRUE(h);
  ASSERT_EQ(h->env.size(), 1u);
  EXPECT_EQ(h->env[0].second, h->token);

  const std::string aws =
      R"({"accessKeyId":"AKIAEXAMPLE","secretAccessKey":"aws-SECRET-key","sessionToken":"aws-SESSION","region":"eu-west-1"})";
  auto a = SealSecret("aws-sigv4", "AWS", aws);
  ASSERT_TRUE(a);
  EXPECT_TRUE(IsSealedToken(a->aux_token));
  EXPECT_NE(a->aux_token, a->token);
  std::map<std::string, std::string> env(a->env.begin(), a->env.end());
  EXPECT_EQ(env.at("AWS_ACCESS_KEY_ID"), "AKIAEXAMPLE");
  EXPECT_EQ(env.at("AWS_SECRET_ACCESS_KEY"), a->token);
  EXPECT_EQ(env.at("AWS_SESSION_TOKEN"), a->aux_token);
  EXPECT_EQ(env.at("AWS_REGION"), "eu-west-1");
  EXPECT_EQ(env.at("AWS_DEFAULT_REGION"), "eu-west-1");
  EXPECT_EQ(env.count("AWS"), 0u);
  for (const auto& [k, v] : env) EXPECT_EQ(v.find("SECRET"), std::string::npos) << k;
  // Restored sandboxes keep their tokens.
  auto again = SealSecret("aws-sigv4", "AWS", aws, a->token, a->aux_token);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->token, a->token);
  EXPECT_EQ(again->aux_token, a->aux_token);

  auto bad = SealSecret("hmac", "SIG", R"({"key":"hmac-SECRET-key"})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("material.header", 0), 0u);
  EXPECT_EQ(bad.error().message.find("SECRET"), std::string::npos);
  EXPECT_FALSE(SealSecret("rsa", "X", "{}"));
}

}  // namespace
}  // namespace osb::worker
