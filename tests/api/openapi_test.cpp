// docs/openapi.yaml lists exactly the routes the server registers, and each
// listed (method, path) is served by the running server (no 404 "no route",
// no 405).
#include <fstream>
#include <regex>
#include <set>

#include "api_harness.h"

namespace osb::testing {
namespace {

using Route = std::pair<std::string, std::string>;

// With `sandbox_scope_only`: just the operations marked x-osb-scope: sandbox.
std::set<Route> OpenApiRoutes(bool sandbox_scope_only = false) {
  std::ifstream in(std::string(OSB_SOURCE_DIR) + "/docs/openapi.yaml");
  EXPECT_TRUE(in.good()) << "docs/openapi.yaml missing";
  std::set<Route> out;
  std::string line, path;
  bool in_paths = false;
  const std::regex path_re("^  (/[^:]*):\\s*$");
  const std::regex method_re("^    (get|put|post|patch|delete|head|options):\\s*$");
  const std::regex scope_re("^      x-osb-scope: sandbox\\s*$");
  std::smatch m;
  Route last;
  std::set<Route> sandbox_scope;
  while (std::getline(in, line)) {
    if (line.rfind("paths:", 0) == 0) {
      in_paths = true;
      continue;
    }
    if (in_paths && !line.empty() && line[0] != ' ') break;  // next top-level key
    if (!in_paths) continue;
    if (std::regex_match(line, m, path_re)) {
      path = m[1];
    } else if (std::regex_match(line, m, method_re)) {
      std::string method = m[1];
      for (char& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      last = {method, path};
      out.insert(last);
    } else if (std::regex_match(line, scope_re)) {
      sandbox_scope.insert(last);
    }
  }
  return sandbox_scope_only ? sandbox_scope : out;
}

TEST_F(ApiTest, OpenApiListsEveryRouteAndOnlyThose) {
  const auto documented = OpenApiRoutes();
  const auto registered_list = cp_->router().Routes();
  const std::set<Route> registered(registered_list.begin(), registered_list.end());
  for (const auto& r : registered) {
    EXPECT_TRUE(documented.count(r)) << r.first << " " << r.second << " is not in docs/openapi.yaml";
  }
  for (const auto& r : documented) {
    EXPECT_TRUE(registered.count(r)) << r.first << " " << r.second << " is documented but not served";
  }
}

// x-osb-scope: sandbox marks exactly the routes the router opens to
// sandbox-scope keys.
TEST_F(ApiTest, OpenApiMarksExactlyTheSandboxScopeRoutes) {
  std::set<Route> registered;
  for (const auto& [method, pattern] : cp_->router().Routes()) {
    if (cp_->router().RequiredScope(method, pattern) == api::KeyScope::kSandbox) registered.emplace(method, pattern);
  }
  EXPECT_EQ(OpenApiRoutes(/*sandbox_scope_only=*/true), registered);
}

TEST_F(ApiTest, EveryDocumentedRouteIsServed) {
  for (const auto& [method, path] : OpenApiRoutes()) {
    const std::string target = std::regex_replace(path, std::regex("\\{[^}]+\\}"), "X");
    auto r = Call(method, target, method == "GET" || method == "DELETE" ? "" : "{}");
    EXPECT_NE(r.status, 405) << method << " " << target;
    if (r.status == 404) {
      EXPECT_EQ(r.body.find("no route"), std::string::npos) << method << " " << target;
    }
  }
}

}  // namespace
}  // namespace osb::testing
