#include "cli/api_client.h"

#include <gtest/gtest.h>

#include "cli/exit_codes.h"

namespace osb::cli {
namespace {

TEST(ErrorFromResponse, MapsStatusesToExitCodes) {
  struct Case { int status; int exit; };
  for (auto c : {Case{400, kExitRejected}, Case{405, kExitRejected}, Case{413, kExitRejected},
                 Case{401, kExitAuth}, Case{403, kExitAuth}, Case{404, kExitNotFound},
                 Case{409, kExitConflict}, Case{500, kExitFailure}, Case{503, kExitFailure},
                 Case{418, kExitRejected}}) {
    EXPECT_EQ(ExitCodeFor(ErrorFromResponse(c.status, "", R"({"error":"m"})").code), c.exit) << c.status;
  }
}

TEST(ErrorFromResponse, UsesTheServerMessageOnOneLine) {
  EXPECT_EQ(ErrorFromResponse(404, "Not Found", R"({"error":"project not found: x"})").message,
            "project not found: x");
  EXPECT_EQ(ErrorFromResponse(400, "", R"({"error":"a\nb\tc"})").message, "a b c");
  EXPECT_EQ(ErrorFromResponse(502, "Bad Gateway", "<html>secret page</html>").message, "HTTP 502 Bad Gateway");
  EXPECT_EQ(ErrorFromResponse(500, "", R"({"error": 5})").message, "HTTP 500");
}

TEST(Redact, ReplacesEveryOccurrence) {
  EXPECT_EQ(Redact("v=s3cr3t and s3cr3t", {"s3cr3t"}), "v=[redacted] and [redacted]");
  EXPECT_EQ(Redact("nothing", {"", "x"}), "nothing");
  EXPECT_EQ(Redact("aaaa", {"a"}), "[redacted][redacted][redacted][redacted]");
}

TEST(ExitCodes, UsageForLocalPreconditions) {
  EXPECT_EQ(ExitCodeFor(ErrorCode::kFailedPrecondition), kExitUsage);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kUnavailable), kExitFailure);
}

}  // namespace
}  // namespace osb::cli

namespace osb::cli {
namespace {

TEST(IsLoopbackHost, OnlyLoopbackLiteralsAndLocalhost) {
  for (const char* h : {"localhost", "127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(h)) << h;
  }
  for (const char* h : {"10.0.0.5", "192.0.2.1", "::", "0.0.0.0", "2001:db8::1", "osb.example.com",
                        "localhost.example.com", "127.0.0.1.nip.io", "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackHost(h)) << h;
  }
}

// The refusal happens before any connection: nothing listens at these
// addresses, and the error is immediate, not a connect timeout.
TEST(ApiClient, RefusesASecretValueOverPlainHttpToARemoteHost) {
  const std::string value = "plain-http-secret-value";
  for (const char* url : {"http://192.0.2.1:9", "http://[2001:db8::1]:9", "http://osb.example.com"}) {
    auto base = ParseApiUrl(url);
    ASSERT_TRUE(base.ok());
    ApiClient api(HttpClient(*base), "key", nullptr);
    nlohmann::json body = {{"value", value}, {"allowedHosts", nlohmann::json::array()}};
    ApiClient::CallOptions options;
    options.timeout = std::chrono::milliseconds(1);  // a connection attempt would fail differently
    options.redact = {value};
    auto res = api.Call("PUT", "/api/projects/p/secrets/S", &body, options);
    ASSERT_FALSE(res.ok()) << url;
    EXPECT_EQ(res.error().code, ErrorCode::kFailedPrecondition) << res.error().message;
    EXPECT_NE(res.error().message.find("refusing to send a secret value over plain HTTP"), std::string::npos);
    EXPECT_NE(res.error().message.find("--insecure"), std::string::npos);
    EXPECT_EQ(res.error().message.find(value), std::string::npos);
    EXPECT_EQ(ExitCodeFor(res.error().code), kExitUsage);

    // A nested value counts too; with --insecure the guard steps aside (and
    // the request then fails on the network instead).
    nlohmann::json nested = {{"secrets", {{{"name", "S"}, {"value", value}}}}};
    res = api.Call("POST", "/api/x", &nested, options);
    EXPECT_EQ(res.error().code, ErrorCode::kFailedPrecondition);
    if (base->host == "osb.example.com") continue;  // no name lookup in a unit test
    api.set_allow_plain_http_secrets(true);
    res = api.Call("PUT", "/api/projects/p/secrets/S", &body, options);
    ASSERT_FALSE(res.ok());
    EXPECT_NE(res.error().code, ErrorCode::kFailedPrecondition) << res.error().message;
  }
}

}  // namespace
}  // namespace osb::cli
