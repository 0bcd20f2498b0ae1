// Router matching and dispatch rules (no network).
#include <gtest/gtest.h>

#include "api/http_server.h"
#include "api/router.h"
#include "api/routes.h"

namespace osb::api {
namespace {

Response Text(const std::string& s) {
  Response r;
  r.body = s;
  return r;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.SetAuthenticator([](const Request& req) -> Result<Caller> {
      if (req.Header("x-api-key") == "good") return Caller{"org1", KeyScope::kAdmin};
      if (req.Header("x-api-key") == "sandbox") return Caller{"org1", KeyScope::kSandbox};
      return MakeError(ErrorCode::kUnauthenticated, "invalid API key");
    });
    router_.AddPublic("GET", "/healthz", [](Request&) { return Text("ok"); });
    router_.Add("GET", "/api/things/{id}", [](Request& r) { return Text(r.org_id + ":" + r.Param("id")); });
    router_.Add("PUT", "/api/things/{id}/parts/{name}",
                [](Request& r) { return Text(r.Param("id") + "/" + r.Param("name")); });
    router_.Add("DELETE", "/api/things/{id}", [](Request&) { return Text("deleted"); });
    router_.Add("GET", "/api/boom", [](Request&) -> Response { throw std::runtime_error("boom"); });
    router_.Add("GET", "/api/open/{id}", [](Request& r) { return Text("open:" + r.org_id); }, KeyScope::kSandbox);
  }

  Response Go(const std::string& method, const std::string& path, bool auth = true) {
    Request r;
    r.method = method;
    r.path = path;
    if (auth) r.headers["X-API-Key"] = "good";
    return router_.Dispatch(r);
  }

  Router router_;
};

TEST_F(RouterTest, MatchesParamsAndDecodesThem) {
  EXPECT_EQ(Go("GET", "/healthz", false).body, "ok");
  EXPECT_EQ(Go("GET", "/api/things/a%20b").body, "org1:a b");
  EXPECT_EQ(Go("PUT", "/api/things/x/parts/Y").body, "x/Y");
  EXPECT_EQ(Go("GET", "/api/things/").status, 404);   // empty segment
  EXPECT_EQ(Go("GET", "/api/things/%zz").status, 400);  // bad escape
  EXPECT_EQ(Go("GET", "/api/things/a/b").status, 404);
}

// The matched route's scope decides, before its handler runs; a route added
// without a scope is admin-only.
TEST_F(RouterTest, ScopeIsCheckedOnTheMatchedRoute) {
  auto as = [&](const std::string& key, const std::string& method, const std::string& path) {
    Request r;
    r.method = method;
    r.path = path;
    r.headers["X-API-Key"] = key;
    return router_.Dispatch(r);
  };
  EXPECT_EQ(as("sandbox", "GET", "/api/open/1").body, "open:org1");
  EXPECT_EQ(as("good", "GET", "/api/open/1").body, "open:org1");
  auto refused = as("sandbox", "DELETE", "/api/things/1");
  EXPECT_EQ(refused.status, 403);
  EXPECT_NE(refused.body.find("requires an API key with scope 'admin'"), std::string::npos) << refused.body;
  EXPECT_EQ(as("sandbox", "PUT", "/api/things/1/parts/x").status, 403);
  EXPECT_EQ(as("sandbox", "GET", "/api/unknown").status, 404);
  EXPECT_EQ(as("nope", "GET", "/api/open/1").status, 401);
  EXPECT_EQ(router_.RequiredScope("GET", "/api/open/{id}"), KeyScope::kSandbox);
  EXPECT_EQ(router_.RequiredScope("GET", "/api/things/{id}"), KeyScope::kAdmin);
  EXPECT_EQ(router_.RequiredScope("GET", "/healthz"), std::nullopt);
}

TEST_F(RouterTest, AuthBeforeLookupThen404And405) {
  EXPECT_EQ(Go("GET", "/api/things/1", false).status, 401);
  EXPECT_EQ(Go("GET", "/api/unknown", false).status, 401);
  EXPECT_EQ(Go("GET", "/api/unknown").status, 404);
  auto r = Go("POST", "/api/things/1");
  EXPECT_EQ(r.status, 405);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].second, "GET, DELETE");
}

TEST_F(RouterTest, AuthIsDecidedOnTheRouteMatchedNotOnAPrefix) {
  // Only the public route answers without a key; every other path, however
  // spelled, needs one.
  EXPECT_EQ(Go("GET", "/healthz", false).status, 200);
  EXPECT_EQ(Go("POST", "/healthz", false).status, 401);
  EXPECT_EQ(Go("GET", "/HEALTHZ", false).status, 401);
  EXPECT_EQ(Go("GET", "/API/things/1", false).status, 401);
  EXPECT_EQ(Go("GET", "/elsewhere", false).status, 401);
  EXPECT_EQ(Go("GET", "//api/things/1", false).status, 401);
  // Not origin-form, dot segments, encoded slashes: 400 with or without a key.
  for (bool auth : {false, true}) {
    EXPECT_EQ(Go("GET", "api/things/1", auth).status, 400);
    EXPECT_EQ(Go("GET", "xapi/things/1", auth).status, 400);
    EXPECT_EQ(Go("GET", "*", auth).status, 400);
    EXPECT_EQ(Go("GET", "http://h/api/things/1", auth).status, 400);
    EXPECT_EQ(Go("GET", "/api/../api/things/1", auth).status, 400);
    EXPECT_EQ(Go("GET", "/api/./things/1", auth).status, 400);
    EXPECT_EQ(Go("GET", "/api/things/%2e%2E", auth).status, 400);
    EXPECT_EQ(Go("GET", "/api/things/a%2fb", auth).status, 400);
    EXPECT_EQ(Go("GET", "/api/things/a%00", auth).status, 400);
  }
}

TEST(OriginForm, OnlySlashPathsWithoutFragmentsOrControls) {
  EXPECT_FALSE(OriginFormError("/api/x?y=1"));
  EXPECT_FALSE(OriginFormError("/"));
  for (const char* bad : {"", "*", "api/x", "http://h/api", "h:80", "/a#b", "/a b", "/a\x01"}) {
    EXPECT_TRUE(OriginFormError(bad)) << bad;
  }
}

TEST_F(RouterTest, AThrowingHandlerIsA500WithoutDetail) {
  auto r = Go("GET", "/api/boom");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.find("boom"), std::string::npos);
}

TEST_F(RouterTest, RoutesAreListed) {
  EXPECT_EQ(router_.Routes().size(), 6u);
  EXPECT_EQ(router_.Routes()[1], (std::pair<std::string, std::string>{"GET", "/api/things/{id}"}));
}

TEST(ListenAddress, Parses) {
  EXPECT_EQ(ParseListenAddress("--listen", "127.0.0.1:8080")->second, 8080);
  EXPECT_EQ(ParseListenAddress("--listen", "[::1]:0")->first, "::1");
  EXPECT_EQ(ParseListenAddress("--listen", "localhost:1")->first, "127.0.0.1");
  for (const char* bad : {"", "8080", ":80", "127.0.0.1:", "127.0.0.1:99999", "host:80", "1.2.3.4:8x"}) {
    auto r = ParseListenAddress("--listen", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("--listen"), std::string::npos);
  }
}

}  // namespace
}  // namespace osb::api

namespace osb::api {
namespace {

TEST(SandboxRequestJson, ParsesEveryFieldAndNamesBadOnes) {
  auto r = ParseSandboxRequest(
      R"({"project":"web","templateID":"py","cpuCount":2,"memoryMB":1024,"timeout":60,)"
      R"("envs":{"A":"1"},"egressAllowlist":["a.com"]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->project, "web");
  EXPECT_EQ(r->template_id, "py");
  EXPECT_EQ(r->cpu_count, 2);
  EXPECT_EQ(r->memory_mb, 1024);
  EXPECT_EQ(r->timeout_sec, 60);
  EXPECT_EQ(r->envs.at("A"), "1");
  EXPECT_EQ(r->egress_allowlist, std::vector<std::string>{"a.com"});
  auto empty = ParseSandboxRequest("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->project.has_value());
  EXPECT_FALSE(empty->egress_allowlist.has_value());
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"cpuCount":"2"})", "cpuCount"}, {R"({"envs":{"A":1}})", "envs"},
           {R"({"envs":[]})", "envs"}, {R"({"timeout":1.5})", "timeout"}, {R"({"bogus":1})", "bogus"},
           {R"({"project":7})", "project"}, {"not json", "malformed"}}) {
    auto bad = ParseSandboxRequest(body);
    ASSERT_FALSE(bad.ok()) << body;
    EXPECT_NE(bad.error().message.find(field), std::string::npos) << bad.error().message;
  }
}

}  // namespace
}  // namespace osb::api
