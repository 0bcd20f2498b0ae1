// Input rules, associated data and key hashing (pure functions).
#include <gtest/gtest.h>

#include "controlplane/auth.h"
#include "controlplane/secrets.h"
#include "controlplane/validation.h"

namespace osb::controlplane {
namespace {

TEST(Validation, Names) {
  for (const char* ok : {"a", "A0", "web-app", "my.project_1", "0"}) EXPECT_TRUE(ValidateName("name", ok).ok()) << ok;
  EXPECT_TRUE(ValidateName("name", std::string(63, 'x')).ok());
  for (const char* bad : {"", "-a", ".a", "_a", "a b", "a/b", "a:b", "é"}) {
    auto st = ValidateName("name", bad);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_TRUE(st.error().message.starts_with("name: ")) << st.error().message;
  }
  EXPECT_FALSE(ValidateName("name", std::string(64, 'x')).ok());
}

TEST(Validation, SecretNamesAreEnvNames) {
  for (const char* ok : {"A", "_", "OPENAI_API_KEY", "a1", "_9"}) EXPECT_TRUE(ValidateSecretName("name", ok).ok());
  EXPECT_TRUE(ValidateSecretName("name", std::string(128, 'A')).ok());
  for (const char* bad : {"", "1A", "A-B", "A.B", "A B", "$A"}) EXPECT_FALSE(ValidateSecretName("name", bad).ok());
  EXPECT_FALSE(ValidateSecretName("name", std::string(129, 'A')).ok());
}

TEST(Validation, SecretValueLimitsNeverQuoteTheValue) {
  EXPECT_FALSE(ValidateSecretValue("").ok());
  EXPECT_TRUE(ValidateSecretValue("x").ok());
  EXPECT_TRUE(ValidateSecretValue(std::string(kMaxSecretValueBytes, 'v')).ok());
  const std::string big = "TOPSECRET" + std::string(kMaxSecretValueBytes, 'v');
  auto st = ValidateSecretValue(big);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message.find("TOPSECRET"), std::string::npos);
  EXPECT_NE(st.error().message.find("value"), std::string::npos);
}

TEST(Validation, HostPatternsAreNormalised) {
  EXPECT_EQ(*NormalizeHostPattern("f", "API.Example.COM."), "api.example.com");
  EXPECT_EQ(*NormalizeHostPattern("f", "*.GitHub.com"), "*.github.com");
  EXPECT_EQ(*NormalizeHostPattern("f", "localhost"), "localhost");
  EXPECT_EQ(*NormalizeHostPattern("f", "API.Example.COM:8443"), "api.example.com:8443");
  EXPECT_EQ(*NormalizeHostPattern("f", "10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(*NormalizeHostPattern("f", "[::1]:443"), "[::1]:443");
  EXPECT_EQ(*NormalizeHostPattern("f", "*", HostPatterns::kAllowAny), "*");
  for (const char* bad : {"", ".", "*", "*.", "a..b", "a.com..", "-a.com", "a-.com", "a b", "a.com:0",
                          "a.com:99999", "http://a.com", "a/b", "*a.com", "a.*.com", "**.a.com", "*:443"}) {
    auto r = NormalizeHostPattern("egressAllowlist", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("egressAllowlist"), std::string::npos);
    EXPECT_NE(r.error().message.find(std::string("'") + bad + "'"), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(NormalizeHostPattern("f", std::string(64, 'a') + ".com").ok());
  auto list = NormalizeHostPatterns("f", {"a.com", "A.com.", "b.com"});
  EXPECT_EQ(*list, (std::vector<std::string>{"a.com", "b.com"}));  // de-duplicated
  // "*" only in allowedHosts, and alone.
  EXPECT_EQ(*NormalizeHostPatterns("allowedHosts", {"*", "*"}, HostPatterns::kAllowAny),
            (std::vector<std::string>{"*"}));
  auto mixed = NormalizeHostPatterns("allowedHosts", {"*", "a.com"}, HostPatterns::kAllowAny);
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.error().message.find("allowedHosts"), std::string::npos);
}

TEST(SecretAad, IsUnambiguous) {
  // Shifting bytes between parts must change the AAD.
  EXPECT_NE(SecretAad("org", "grp", "AB"), SecretAad("org", "grpA", "B"));
  EXPECT_NE(SecretAad("or", "ggrp", "A"), SecretAad("org", "grp", "A"));
  EXPECT_EQ(SecretAad("o", "g", "N"), SecretAad("o", "g", "N"));
}

TEST(ApiKeys, HashIsSha256HexAndKeysAreRandom) {
  EXPECT_EQ(HashApiKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string a = GenerateApiKey(), b = GenerateApiKey();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 4u + 64u);
  EXPECT_TRUE(a.starts_with("osb_"));
}

}  // namespace
}  // namespace osb::controlplane
