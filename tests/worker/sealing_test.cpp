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

TEST(Sealing, PlainEnvsWinOverTokensAndSystemVarsAreAlwaysSet) {
  const auto env = ComposeSandboxEnv(
      {{"MODE", "dev"}, {"API_KEY", "plain-override"}},
      {{"API_KEY", "osb_sealed_11111111111111111111111111111111"},
       {"DB_PASSWORD", "osb_sealed_22222222222222222222222222222222"}},
      {"http://10.200.0.1:3128", "/etc/ssl/certs/ca-certificates.crt"});
  EXPECT_EQ(env.at("MODE"), "dev");
  EXPECT_EQ(env.at("API_KEY"), "plain-override");
  EXPECT_EQ(env.at("DB_PASSWORD"), "osb_sealed_22222222222222222222222222222222");
  EXPECT_EQ(env.at("HTTPS_PROXY"), "http://10.200.0.1:3128");
  EXPECT_EQ(env.at("http_proxy"), "http://10.200.0.1:3128");
  EXPECT_EQ(env.at("NO_PROXY"), "localhost,127.0.0.1,::1");
  EXPECT_EQ(env.at("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt");
  EXPECT_EQ(env.at("REQUESTS_CA_BUNDLE"), "/etc/ssl/certs/ca-certificates.crt");
  EXPECT_EQ(env.at("NODE_EXTRA_CA_CERTS"), "/etc/ssl/certs/ca-certificates.crt");
}

}  // namespace
}  // namespace osb::worker
