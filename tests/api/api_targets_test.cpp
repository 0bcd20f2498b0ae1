// One way in: only origin-form targets ("/...") are routed, and the decision
// to authenticate is made on exactly the path the router matches. Every odd
// request target is sent WITHOUT an API key, over a raw socket (HTTP client
// libraries normalise targets, an attacker does not), to the real server on
// both backends: the answer is always a 4xx and nothing is created.
#include "api_harness.h"

#include <regex>

namespace osb::testing {
namespace {

using nlohmann::json;

class TargetsTest : public ApiTest {
 protected:
  // Status code of a raw response ("HTTP/1.1 NNN ..."), 0 if none.
  static int StatusOf(const std::string& raw) {
    std::smatch m;
    if (!std::regex_search(raw, m, std::regex("^HTTP/1\\.[01] (\\d{3}) "))) return 0;
    return std::stoi(m[1]);
  }

  int RawRequest(const std::string& method, const std::string& target, const std::string& body) {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (!body.empty()) req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    const std::string raw = client_->Raw(req);
    responses_.push_back(raw);
    return StatusOf(raw);
  }

  // Every project in the default org and in the empty org (where a request
  // that skipped authentication would land).
  size_t ProjectsAnywhere() {
    size_t n = 0;
    auto org = cp_->store().EnsureOrg("default");
    if (org.ok()) {
      auto listed = cp_->store().ListProjects(org->id);
      if (listed.ok()) n += listed->size();
    }
    auto nobody = cp_->store().ListProjects("");
    if (nobody.ok()) n += nobody->size();
    return n;
  }
};

const char* const kOddTargets[] = {
    "api/projects",                      // no leading slash
    "xapi/projects",                     // no leading slash, first byte eaten
    "aapi/projects",
    "*",                                 // asterisk-form
    "http://127.0.0.1/api/projects",     // absolute-form
    "http://127.0.0.1:1/api/projects",
    "HTTP://localhost/api/projects",
    "//api/projects",                    // empty first segment
    "/API/projects",                     // case games
    "/Api/projects",
    "/api/Projects",
    "/api/../api/projects",              // dot segments
    "/api/./projects",
    "/./api/projects",
    "/healthz/../api/projects",
    "/healthz/..%2fapi/projects",
    "/healthz/%2e%2e/api/projects",      // percent-encoded dot segments
    "/api/%2e%2e/api/projects",
    "/api/%2E/projects",
    "/api%2fprojects",                   // percent-encoded slash
    "/api%2Fprojects",
    "/%61pi/projects",                   // percent-encoded letters
    "/api/projects/",                    // trailing slash
    "/api//projects",
    "/api/projects%00",
    "/api/projects#frag",
    "/api\\projects",
};

TEST_F(TargetsTest, OddTargetsWithoutAKeyAreRefusedAndCreateNothing) {
  const std::string body = json{{"name", "pwned"}}.dump();
  for (const char* target : kOddTargets) {
    for (const char* method : {"GET", "POST", "OPTIONS"}) {
      const int status = RawRequest(method, target, std::string(method) == "POST" ? body : "");
      EXPECT_GE(status, 400) << method << " " << target;
      EXPECT_LT(status, 500) << method << " " << target;
    }
  }
  EXPECT_EQ(ProjectsAnywhere(), 0u) << "a request without an API key created a project";
  const auto listed = Call("GET", "/api/projects");
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body.find("pwned"), std::string::npos);
}

TEST_F(TargetsTest, NonOriginFormIsA400BeforeAnyRouting) {
  // Even with a valid key: only origin-form is served.
  for (const char* target : {"api/projects", "xapi/projects", "*", "http://127.0.0.1/api/projects"}) {
    const auto r = client_->Do("GET", target, "", {{"X-API-Key", kTestAdminKey}});
    EXPECT_EQ(r.status, 400) << target << ": " << r.body;
  }
  const auto r = client_->Do("POST", "xapi/projects", json{{"name", "pwned"}}.dump(),
                             {{"X-API-Key", kTestAdminKey}, {"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(ProjectsAnywhere(), 0u);
}

TEST_F(TargetsTest, DotSegmentsAndEncodedSlashesAreA400EvenWithAKey) {
  for (const char* target : {"/api/../api/projects", "/api/./projects", "/api/%2e%2e/api/projects",
                             "/api%2fprojects", "/api/projects/a%2Fb"}) {
    const auto r = Call("GET", target);
    EXPECT_EQ(r.status, 400) << target << ": " << r.body;
  }
}

TEST_F(TargetsTest, OnlyPublicRoutesAnswerWithoutAKey) {
  EXPECT_EQ(client_->Do("GET", "/healthz").status, 200);
  // An unknown path outside /api still needs a key: nothing is learned.
  EXPECT_EQ(client_->Do("GET", "/nothing-here").status, 401);
  EXPECT_EQ(client_->Do("GET", "/HEALTHZ").status, 401);
  EXPECT_EQ(client_->Do("POST", "/healthz").status, 401);
}

}  // namespace
}  // namespace osb::testing
