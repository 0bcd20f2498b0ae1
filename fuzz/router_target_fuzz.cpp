// Router: any request target, method and header bytes. Invariants: no crash;
// without a valid key only the public route's handler ever runs (one way
// in); a handler only ever sees an origin-form path without dot segments.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api/router.h"

namespace {

osb::api::Router& TheRouter() {
  static osb::api::Router* router = [] {
    auto* r = new osb::api::Router();
    r->SetAuthenticator([](const osb::api::Request& req) -> osb::Result<osb::api::Caller> {
      if (req.Header("X-API-Key") == "good") return osb::api::Caller{"org", osb::api::KeyScope::kAdmin};
      return osb::MakeError(osb::ErrorCode::kUnauthenticated, "invalid API key");
    });
    r->AddPublic("GET", "/healthz", [](osb::api::Request&) { return osb::api::Response{}; });
    for (const char* pattern : {"/api/projects", "/api/projects/{project}", "/api/projects/{project}/secrets/{name}"}) {
      for (const char* method : {"GET", "POST", "PUT", "DELETE"}) {
        r->Add(method, pattern, [](osb::api::Request& req) {
          if (req.org_id != "org") std::abort();  // reached without authentication
          if (req.path.empty() || req.path.front() != '/') std::abort();
          if (req.path.find("/../") != std::string::npos || req.path.find("/./") != std::string::npos) std::abort();
          return osb::api::Response{};
        });
      }
    }
    return r;
  }();
  return *router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // [method selector][key selector][target...]
  if (size < 2) return 0;
  static const char* kMethods[] = {"GET", "POST", "PUT", "DELETE", "OPTIONS", "get"};
  osb::api::Request req;
  req.method = kMethods[data[0] % 6];
  if (data[1] & 1) req.headers["X-API-Key"] = "bad";
  const std::string target(reinterpret_cast<const char*>(data + 2), size - 2);
  if (osb::api::OriginFormError(target)) return 0;  // the server answers 400 first
  const auto q = target.find('?');
  req.path = target.substr(0, q);
  (void)TheRouter().Dispatch(req);
  return 0;
}
