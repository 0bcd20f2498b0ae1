// Router: (method, pattern) → handler. Patterns are literal segments and
// {param} segments, e.g. "/api/projects/{project}/secrets/{name}"; a param
// matches exactly one non-empty segment (percent-decoded into
// Request::params). Other components register their routes from their own
// files, e.g. router.Add("POST", "/api/sandboxes", handler).
//
// Dispatch order: every path under /api/ requires a valid X-API-Key (401
// otherwise; the caller's org goes to Request::org_id) — checked before the
// route lookup so unauthenticated callers learn nothing about routes; then
// unknown path → 404, known path but other method → 405 with Allow. A handler
// that throws yields a 500 without detail.
// Thread safety: Add/SetAuthenticator before serving; Dispatch is then
// called concurrently.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "api/http.h"

namespace osb::api {

using Handler = std::function<Response(Request&)>;
// Returns the org id for the request's API key, or an error (→ 401/503).
using Authenticate = std::function<Result<std::string>(const Request&)>;

class Router {
 public:
  void Add(const std::string& method, const std::string& pattern, Handler handler);
  void SetAuthenticator(Authenticate authenticate) { authenticate_ = std::move(authenticate); }

  Response Dispatch(Request& request) const;

  // (method, pattern) of every registered route, in registration order.
  std::vector<std::pair<std::string, std::string>> Routes() const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  static bool Match(const Route& route, const std::vector<std::string>& segments,
                    std::map<std::string, std::string>* params);

  std::vector<Route> routes_;
  Authenticate authenticate_;
};

// Percent-decodes one path segment; nullopt if malformed.
std::optional<std::string> PercentDecode(const std::string& s);

}  // namespace osb::api
