// Secret kinds: material validation per kind (errors name the field and
// never quote a secret), the readable/secret split, request rules, and the
// one per-kind mapping of what a sandbox's environment gets.
#include "common/secret_kinds.h"

#include <gtest/gtest.h>

#include "common/base64.h"
#include "common/hmac.h"

namespace osb {
namespace {

TEST(SecretKinds, ParseKindNames) {
  EXPECT_EQ(ParseSecretKind("value"), SecretKind::kValue);
  EXPECT_EQ(ParseSecretKind("hmac"), SecretKind::kHmac);
  EXPECT_EQ(ParseSecretKind("aws-sigv4"), SecretKind::kAwsSigV4);
  EXPECT_EQ(ParseSecretKind("oauth2-refresh"), SecretKind::kOAuth2Refresh);
  EXPECT_FALSE(ParseSecretKind("HMAC"));
  EXPECT_FALSE(ParseSecretKind(""));
}

TEST(SecretKinds, HmacMaterialValidationNamesTheFieldNeverTheKey) {
  const std::string key = "super-secret-key-value";
  auto bad = [&](std::string json, std::string field) {
    auto m = SecretMaterial::Parse(SecretKind::kHmac, json);
    ASSERT_FALSE(m) << json;
    EXPECT_EQ(m.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(m.error().message.rfind(field, 0), 0u) << m.error().message;
    EXPECT_EQ(m.error().message.find(key), std::string::npos) << m.error().message;
  };
  bad(R"({"header":"X-Sig"})", "material.key");
  bad(R"({"key":")" + key + R"("})", "material.header");
  bad(R"({"key":")" + key + R"(","header":"X-Sig","hash":"md5"})", "material.hash");
  bad(R"({"key":")" + key + R"(","header":"Content-Length"})", "material.header");
  bad(R"({"key":")" + key + R"(","header":"X Sig"})", "material.header");
  bad(R"({"key":")" + key + R"(","header":"X-Sig","keyEncoding":"hex"})", "material.key");
  bad(R"({"key":")" + key + R"(","header":"X-Sig","message":"{nope}"})", "material.message");
  bad(R"({"key":")" + key + R"(","header":"X-Sig","message":"{timestamp}"})", "material.timestampHeader");
  bad(R"({"key":")" + key + R"(","header":"X-Sig","extra":1})", "material.extra");
  bad(R"({"key":5,"header":"X-Sig"})", "material.key");
  bad("[1]", "material");
  bad("not json " + key, "material");
  auto ok = SecretMaterial::Parse(SecretKind::kHmac, R"({"key":")" + key + R"(","header":"X-Sig","format":"base64"})");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->Get("key"), key);
  EXPECT_EQ(ok->PublicJson(), R"({"format":"base64","header":"X-Sig"})");
  EXPECT_EQ(ok->PublicJson().find(key), std::string::npos);
  ASSERT_EQ(ok->SecretValues().size(), 1u);
  auto again = SecretMaterial::Parse(SecretKind::kHmac, ok->ToJson());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->ToJson(), ok->ToJson());
}

TEST(SecretKinds, AwsAndOAuthPublicFieldsOnly) {
  auto aws = SecretMaterial::Parse(
      SecretKind::kAwsSigV4,
      R"({"accessKeyId":"AKIAEXAMPLE","secretAccessKey":"wJalr-SECRET","sessionToken":"FwoG-SESSION","region":"eu-west-1"})");
  ASSERT_TRUE(aws) << aws.error().message;
  EXPECT_EQ(aws->PublicJson(), R"({"accessKeyId":"AKIAEXAMPLE","region":"eu-west-1"})");
  EXPECT_EQ(aws->SecretValues().size(), 2u);
  EXPECT_FALSE(SecretMaterial::Parse(SecretKind::kAwsSigV4, R"({"accessKeyId":"AKIA","secretAccessKey":""})"));
  EXPECT_FALSE(SecretMaterial::Parse(SecretKind::kAwsSigV4, R"({"accessKeyId":"AK IA","secretAccessKey":"x"})"));

  auto oauth = SecretMaterial::Parse(SecretKind::kOAuth2Refresh,
                                     R"({"tokenEndpoint":"https://login.test/token","clientId":"c",)"
                                     R"("clientSecret":"CS-secret","refreshToken":"RT-secret","scopes":["a","b"]})");
  ASSERT_TRUE(oauth) << oauth.error().message;
  EXPECT_EQ(oauth->Get("scopes"), "a b");
  EXPECT_EQ(oauth->PublicJson(), R"({"clientId":"c","scopes":["a","b"],"tokenEndpoint":"https://login.test/token"})");
  auto http = SecretMaterial::Parse(SecretKind::kOAuth2Refresh,
                                    R"({"tokenEndpoint":"http://login.test/token","clientId":"c","refreshToken":"r"})");
  ASSERT_FALSE(http);
  EXPECT_EQ(http.error().message.rfind("material.tokenEndpoint", 0), 0u);
  EXPECT_FALSE(SecretMaterial::Parse(SecretKind::kValue, "{}"));
}

TEST(SecretKinds, RequestRulesParseNormalizeAndMatch) {
  auto r = ParseRequestRuleText("post,GET API.Example.com/v1/messages", "--allow-request");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->host, "api.example.com");
  EXPECT_EQ(r->methods, (std::vector<std::string>{"POST", "GET"}));
  EXPECT_EQ(r->path_prefix, "/v1/messages");
  EXPECT_EQ(r->Text(), "POST,GET api.example.com/v1/messages");
  EXPECT_TRUE(r->Matches("api.example.com", 443, "POST", "/v1/messages"));
  EXPECT_TRUE(r->Matches("api.example.com", 443, "GET", "/v1/messages/123"));
  EXPECT_FALSE(r->Matches("api.example.com", 443, "GET", "/v1/messagesX"));
  EXPECT_FALSE(r->Matches("api.example.com", 443, "DELETE", "/v1/messages"));
  EXPECT_FALSE(r->Matches("other.example.com", 443, "POST", "/v1/messages"));
  // Odd spellings of a target that an upstream may resolve outside the prefix.
  for (const char* path : {"/v1/messages/../admin", "/v1/messages/%2e%2e/admin", "/v1/messages/%2E./admin",
                           "/v1/messages/..;/admin", "/v1/messages/.%2e;x/admin", "/v1/messages/./../admin",
                           "/v1/messages%2f..%2fadmin", "/v1/messages%2F..", "/v1/messages\\..\\admin",
                           "/v1/messages/%5c..", "/v1/messages/..", "/v1/messages/x/%00"}) {
    EXPECT_FALSE(r->Matches("api.example.com", 443, "POST", path)) << path;
    EXPECT_FALSE(IsPlainRequestPath(path)) << path;
  }
  for (const char* path : {"/v1/messages/...", "/v1/messages/.x", "/v1/messages/a..b", "/v1/messages/%2e%2e%2e",
                           "/v1/messages/%41"}) {
    EXPECT_TRUE(r->Matches("api.example.com", 443, "POST", path)) << path;
  }
  auto any = ParseRequestRuleText("*.example.com", "--allow-request");
  ASSERT_TRUE(any);
  EXPECT_TRUE(any->methods.empty());
  EXPECT_TRUE(any->Matches("a.example.com", 443, "PATCH", "/x"));
  EXPECT_FALSE(ParseRequestRuleText("POST api.example.com/v1 x", "--allow-request"));
  EXPECT_FALSE(ParseRequestRuleText("POST", "--allow-request"));
  auto json = RequestRulesFromJson(R"([{"host":"api.test","methods":["post"],"pathPrefix":"/a"}])", "allowedRequests");
  ASSERT_TRUE(json);
  EXPECT_EQ(RequestRulesToJson(*json), R"([{"host":"api.test","methods":["POST"],"pathPrefix":"/a"}])");
  auto bad = RequestRulesFromJson(R"([{"host":"api.test","pathPrefix":"a"}])", "allowedRequests");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("allowedRequests[0].pathPrefix", 0), 0u) << bad.error().message;
  EXPECT_FALSE(RequestRulesFromJson(R"([{"host":"api.test","x":1}])", "allowedRequests"));
}

TEST(SecretKinds, SandboxEnvironmentPerKind) {
  using Source = SandboxEnvEntry::Source;
  auto value = SandboxEnvFor(SecretKind::kValue, "API_KEY", nullptr);
  ASSERT_EQ(value.size(), 1u);
  EXPECT_EQ(value[0].name, "API_KEY");
  EXPECT_EQ(value[0].source, Source::kToken);
  auto aws = SecretMaterial::Parse(
      SecretKind::kAwsSigV4,
      R"({"accessKeyId":"AKIAEXAMPLE","secretAccessKey":"wJalr-SECRET","sessionToken":"FwoG","region":"us-east-2"})");
  ASSERT_TRUE(aws);
  EXPECT_TRUE(NeedsAuxToken(SecretKind::kAwsSigV4, &*aws));
  auto env = SandboxEnvFor(SecretKind::kAwsSigV4, "AWS", &*aws);
  ASSERT_EQ(env.size(), 5u);
  EXPECT_EQ(env[0].name, "AWS_ACCESS_KEY_ID");
  EXPECT_EQ(env[0].source, Source::kPlain);
  EXPECT_EQ(env[0].plain, "AKIAEXAMPLE");
  EXPECT_EQ(env[1].name, "AWS_SECRET_ACCESS_KEY");
  EXPECT_EQ(env[1].source, Source::kToken);
  EXPECT_EQ(env[2].name, "AWS_SESSION_TOKEN");
  EXPECT_EQ(env[2].source, Source::kAuxToken);
  EXPECT_EQ(env[3].plain, "us-east-2");
  for (const auto& e : env) EXPECT_EQ(e.plain.find("SECRET"), std::string::npos);
}

TEST(Base64AndHmac, KnownAnswers) {
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Decode("Zm9vYmE="), "fooba");
  EXPECT_FALSE(Base64Decode("Zm9vYg="));
  EXPECT_FALSE(Base64Decode("Zm9vYh=="));  // non-canonical padding bits
  // RFC 4231 test case 2.
  const std::string mac = Hmac(HashAlg::kSha256, "Jefe", "what do ya want for nothing?");
  EXPECT_EQ(Base64Encode(mac), "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
  HmacStream s(HashAlg::kSha256, "Jefe");
  s.Update("what do ya ");
  s.Update("want for nothing?");
  EXPECT_EQ(s.Final(), mac);
}

}  // namespace
}  // namespace osb
