// Every client mistake is a 4xx JSON error naming the field or entry; no
// input yields a 500 or a crash. Real HTTP, both backends.
#include "api_harness.h"

namespace osb::testing {
namespace {

using nlohmann::json;

class ErrorsTest : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "proj"}}).status, 201);
  }

  // Asserts status and that the {"error"} message contains `mention`.
  void ExpectError(const HttpResult& r, int status, const std::string& mention) {
    EXPECT_EQ(r.status, status) << r.body;
    const json j = r.Json();
    ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << r.body;
    EXPECT_NE(j["error"].get<std::string>().find(mention), std::string::npos)
        << "error '" << j["error"] << "' should mention '" << mention << "'";
  }
};

TEST_F(ErrorsTest, MalformedBodies) {
  ExpectError(Call("POST", "/api/projects", std::string("{\"name\": ")), 400, "malformed JSON");
  ExpectError(Call("POST", "/api/projects", std::string("")), 400, "JSON object");
  ExpectError(Call("POST", "/api/projects", std::string("[1,2]")), 400, "JSON object");
  ExpectError(Call("POST", "/api/projects", std::string("\"name\"")), 400, "JSON object");
  ExpectError(Call("POST", "/api/projects", std::string("{\"name\":\"\xff\xfe\"}")), 400, "malformed JSON");
  ExpectError(Call("PATCH", "/api/projects/proj", std::string("{,}")), 400, "malformed JSON");
  ExpectError(Call("PUT", "/api/projects/proj/secrets/A", std::string("nope")), 400, "malformed JSON");
}

TEST_F(ErrorsTest, WrongTypesAndUnknownFieldsNameTheField) {
  ExpectError(Call("POST", "/api/projects", json{{"name", 5}}), 400, "name");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"cpuCount", "2"}}), 400, "cpuCount");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"cpuCount", 1.5}}), 400, "cpuCount");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"memoryMB", true}}), 400, "memoryMB");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"timeoutSec", json::array()}}), 400, "timeoutSec");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"egressAllowlist", "a.com"}}), 400,
              "egressAllowlist");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"egressAllowlist", {1}}}), 400, "egressAllowlist");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"secretGroups", "g"}}), 400, "secretGroups");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"template", 3}}), 400, "template");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"cpus", 2}}), 400, "cpus");
  ExpectError(Call("PATCH", "/api/projects/proj", json{{"cpuCount", {{"a", 1}}}}), 400, "cpuCount");
  ExpectError(Call("PUT", "/api/projects/proj/secrets/A", json{{"value", 42}}), 400, "value");
  ExpectError(Call("PUT", "/api/projects/proj/secrets/A", json{{"value", "v"}, {"allowedHosts", "a.com"}}), 400,
              "allowedHosts");
  ExpectError(Call("PUT", "/api/projects/proj/secrets/A", json{{"value", "v"}, {"extra", 1}}), 400, "extra");
  ExpectError(Call("POST", "/api/secret-groups", json{{"name", json::array()}}), 400, "name");
}

TEST_F(ErrorsTest, MissingAndInvalidValues) {
  ExpectError(Call("POST", "/api/projects", json::object()), 400, "name");
  ExpectError(Call("POST", "/api/projects", json{{"name", ""}}), 400, "name");
  ExpectError(Call("POST", "/api/projects", json{{"name", "-leading-dash"}}), 400, "name");
  ExpectError(Call("POST", "/api/projects", json{{"name", std::string(64, 'a')}}), 400, "name");
  ExpectError(Call("POST", "/api/projects", json{{"name", "sp ace"}}), 400, "name");
  EXPECT_EQ(Call("POST", "/api/projects", json{{"name", std::string(63, 'a')}}).status, 201);
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"cpuCount", 0}}), 400, "cpuCount");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"cpuCount", 65}}), 400, "cpuCount");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"cpuCount", 99999999999LL}}), 400, "cpuCount");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"memoryMB", 127}}), 400, "memoryMB");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"memoryMB", 262145}}), 400, "memoryMB");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"timeoutSec", 0}}), 400, "timeoutSec");
  ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"timeoutSec", 2592001}}), 400, "timeoutSec");
  for (const char* bad : {"http://a.com", "a.com:0", "a.com:99999", "*", "*.", "a..com", "-a.com", "a b.com", "",
                                "a.*.com", "10.0.0.0/8"}) {
    ExpectError(Call("POST", "/api/projects", json{{"name", "x"}, {"egressAllowlist", {"ok.com", bad}}}), 400,
                "'" + std::string(bad) + "'");
  }
  ExpectError(Call("POST", "/api/secret-groups", json::object()), 400, "name");
  ExpectError(Call("POST", "/api/secret-groups", json{{"name", "bad/name"}}), 400, "name");
}

TEST_F(ErrorsTest, SecretNamesAndValues) {
  ExpectError(Call("PUT", "/api/projects/proj/secrets/1ABC", json{{"value", "v"}}), 400, "1ABC");
  ExpectError(Call("PUT", "/api/projects/proj/secrets/A-B", json{{"value", "v"}}), 400, "A-B");
  ExpectError(Call("PUT", "/api/projects/proj/secrets/A%20B", json{{"value", "v"}}), 400, "name");
  ExpectError(Call("PUT", "/api/projects/proj/secrets/" + std::string(129, 'A'), json{{"value", "v"}}), 400, "name");
  EXPECT_EQ(Call("PUT", "/api/projects/proj/secrets/" + std::string(128, 'A'), json{{"value", "v"}}).status, 200);
  EXPECT_EQ(Call("PUT", "/api/projects/proj/secrets/_lower_ok9", json{{"value", "v"}}).status, 200);
  ExpectError(Call("PUT", "/api/projects/proj/secrets/A", json::object()), 400, "value");
  ExpectError(Call("PUT", "/api/projects/proj/secrets/A", json{{"value", ""}}), 400, "value");
  const std::string big(64 * 1024 + 1, 'v');
  auto too_big = Call("PUT", "/api/projects/proj/secrets/A", json{{"value", big}});
  ExpectError(too_big, 400, "value");
  EXPECT_EQ(too_big.body.find(big.substr(0, 100)), std::string::npos);
  EXPECT_EQ(Call("PUT", "/api/projects/proj/secrets/A", json{{"value", std::string(64 * 1024, 'v')}}).status, 200);
  // Any bytes a JSON string can carry, including NUL and non-ASCII.
  EXPECT_EQ(Call("PUT", "/api/projects/proj/secrets/B", json{{"value", std::string("a\0b\xc3\xa9\n", 6)}}).status, 200);
  ExpectError(Call("PUT", "/api/projects/proj/secrets/C", json{{"value", "v"}, {"allowedHosts", {"bad_host!"}}}),
              400, "bad_host!");
  ExpectError(Call("DELETE", "/api/projects/proj/secrets/NOPE"), 404, "NOPE");
  ExpectError(Call("DELETE", "/api/projects/proj/secrets/9bad"), 400, "9bad");
}

TEST_F(ErrorsTest, BadIdsAndUnknownObjects) {
  ExpectError(Call("GET", "/api/projects/missing"), 404, "missing");
  ExpectError(Call("GET", "/api/projects/prj_000000000000000000000000"), 404, "not found");
  ExpectError(Call("PATCH", "/api/projects/missing", json{{"cpuCount", 2}}), 404, "missing");
  ExpectError(Call("DELETE", "/api/projects/missing"), 404, "missing");
  ExpectError(Call("GET", "/api/projects/missing/secrets"), 404, "missing");
  ExpectError(Call("PUT", "/api/projects/missing/secrets/A", json{{"value", "v"}}), 404, "missing");
  ExpectError(Call("GET", "/api/projects/%2e%2e"), 400, "dot segments");
  ExpectError(Call("GET", "/api/projects/bad%20id"), 400, "invalid project");
  ExpectError(Call("GET", "/api/projects/" + std::string(100, 'x')), 400, "invalid project");
  ExpectError(Call("GET", "/api/projects/%zz"), 400, "percent-encoding");
  ExpectError(Call("GET", "/api/secret-groups/missing"), 404, "missing");
  ExpectError(Call("GET", "/api/secret-groups/%2F"), 400, "encoded '/'");
  ExpectError(Call("GET", "/api/projects/proj/secrets/A"), 405, "GET");
}

TEST_F(ErrorsTest, WrongMethodIs405WithAllow) {
  auto r = Call("DELETE", "/api/projects");
  ExpectError(r, 405, "DELETE");
  EXPECT_EQ(r.headers["allow"], "POST, GET");
  ExpectError(Call("POST", "/api/projects/proj"), 405, "POST");
  ExpectError(Call("PATCH", "/api/secret-groups"), 405, "PATCH");
  // Without a key only the public routes answer: the method is not revealed.
  ExpectError(Call("POST", "/healthz", "", ""), 401, "API key");
  ExpectError(Call("POST", "/healthz"), 405, "POST");
}

TEST_F(ErrorsTest, OversizedBodyIs413AndHugeHeadersAre431) {
  const std::string body = "{\"name\":\"" + std::string(1024 * 1024 + 10, 'a') + "\"}";
  ExpectError(Call("POST", "/api/projects", body), 413, "too large");
  auto headers = client_->Do("GET", "/api/projects", "",
                             {{"X-API-Key", kTestAdminKey}, {"X-Big", std::string(20 * 1024, 'h')}});
  EXPECT_EQ(headers.status, 431);
  EXPECT_TRUE(headers.Json().contains("error"));
  // The server is still healthy afterwards.
  EXPECT_EQ(Call("GET", "/api/projects").status, 200);
}

TEST_F(ErrorsTest, MalformedHttpIs400AndNeverCrashes) {
  const std::string reply = client_->Raw("GARBAGE\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  const std::string chunked = client_->Raw(
      "POST /api/projects HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  EXPECT_TRUE(chunked.starts_with("HTTP/1.1 400")) << chunked;
  EXPECT_EQ(Call("GET", "/healthz", "", "").status, 200);
}

TEST_F(ErrorsTest, KeepAliveServesManyRequestsOnOneConnection) {
  std::string pipeline;
  for (int i = 0; i < 3; ++i) pipeline += "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  pipeline += "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string reply = client_->Raw(pipeline);
  size_t count = 0;
  for (size_t pos = 0; (pos = reply.find("HTTP/1.1 200", pos)) != std::string::npos; ++pos) ++count;
  EXPECT_EQ(count, 4u);
}

TEST_F(ErrorsTest, NoInputProducesA500) {
  // A grab bag of hostile inputs; none may produce a 5xx.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/api/projects", "{\"name\":\"x\",\"cpuCount\":1e400}"},
      {"/api/projects", "{\"name\":\"x\",\"cpuCount\":-1}"},
      {"/api/projects", "{\"name\":\"x\",\"egressAllowlist\":null}"},
      {"/api/projects", "{\"name\":\"x\\u0000y\"}"},
      {"/api/projects", std::string(100000, '[')},
      {"/api/projects", std::string(400000, '[') + std::string(400000, ']')},
      {"/api/projects", "{\"name\":" + std::string(300000, '[') + std::string(300000, ']') + "}"},
      {"/api/projects", "{\"name\":\"x\",\"egressAllowlist\":[" + std::string(200000, '{') + "]}"},
      {"/api/projects", "{\"name\":\"dup\",\"name\":\"dup2\"}"},
      {"/api/secret-groups", "{\"name\":null}"},
  };
  for (const auto& [path, body] : cases) {
    auto r = Call("POST", path, body);
    EXPECT_LT(r.status, 500) << body.substr(0, 80);
    EXPECT_GE(r.status, 200);
  }
  EXPECT_EQ(Logs().find("internal error"), std::string::npos);
}

}  // namespace
}  // namespace osb::testing
