// Router: (method, pattern) → handler. Patterns are literal segments and
// {param} segments, e.g. "/api/projects/{project}/secrets/{name}"; a param
// matches exactly one non-empty segment (percent-decoded into
// Request::params). Other components register their routes from their own
// files, e.g. router.Add("POST", "/api/sandboxes", handler).
//
// One way in. Request::path must be origin-form ("/..."; the HTTP server
// answers anything else with 400 before routing, see OriginFormError). The
// path is split into segments exactly once, and that one split decides both
// authentication and the route:
//   1. a segment that is malformed percent-encoding, or decodes to "." or
//      "..", or contains an encoded '/' or NUL → 400 (no normalisation: the
//      path the router matches is the path the client sent);
//   2. a route added with AddPublic whose method and pattern match → its
//      handler, without authentication;
//   3. everything else — every other route, unknown paths, other methods on
//      a public path — requires a valid, unexpired X-API-Key (401
//      otherwise; the caller's org goes to Request::org_id), so
//      unauthenticated callers learn nothing about routes; matching is
//      case-sensitive;
//   4. the matched route's required key scope (see KeyScope) must be
//      covered by the key's scope, else 403 naming the required scope —
//      decided here, on the matched route, never in a handler;
//   5. unknown path → 404, known path but other method → 405 with Allow.
// A handler that throws yields a 500 without detail.
// Thread safety: Add/SetAuthenticator before serving; Dispatch is then
// called concurrently.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http.h"

namespace osb::api {

using Handler = std::function<Response(Request&)>;

// API key scopes, least to most. A route names the least scope it needs and
// a key covers every scope up to its own: an admin key may call every
// route; a sandbox key only the routes registered with KeyScope::kSandbox.
// Fail-closed: Add without a scope means kAdmin, so a new route is
// admin-only until someone decides a sandbox key may call it.
enum class KeyScope { kSandbox, kAdmin };
const char* KeyScopeName(KeyScope scope);                    // "sandbox" | "admin"
std::optional<KeyScope> ParseKeyScope(std::string_view name);  // exact, lower case

// Who a valid API key belongs to and what it may do.
struct Caller {
  std::string org_id;
  KeyScope scope = KeyScope::kSandbox;
};
// The caller for the request's API key, or an error (401 for a missing,
// unknown or expired key; 503 if the store is down).
using Authenticate = std::function<Result<Caller>(const Request&)>;

class Router {
 public:
  // An authenticated route that keys of scope `required` or above may call.
  void Add(const std::string& method, const std::string& pattern, Handler handler,
           KeyScope required = KeyScope::kAdmin);
  // A route answered without an API key (health and readiness only).
  void AddPublic(const std::string& method, const std::string& pattern, Handler handler);
  void SetAuthenticator(Authenticate authenticate) { authenticate_ = std::move(authenticate); }
  // An authenticated route whose body is streamed (file upload/download,
  // docs/files.md): the server dispatches it after the headers, with
  // Request::body_stream carrying the body, and writes a
  // Response::body_stream as it is produced. Authentication and routing are
  // the same as for Add.
  void AddStreaming(const std::string& method, const std::string& pattern, Handler handler,
                    KeyScope required = KeyScope::kAdmin);
  // Whether (method, path) would be dispatched to a streaming route.
  bool IsStreaming(const std::string& method, const std::string& path) const;

  Response Dispatch(Request& request) const;

  // (method, pattern) of every registered route, in registration order.
  std::vector<std::pair<std::string, std::string>> Routes() const;
  // The scope a route needs (nullopt: public, or no such route).
  std::optional<KeyScope> RequiredScope(const std::string& method, const std::string& pattern) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
    bool is_public = false;
    KeyScope required = KeyScope::kAdmin;
    bool streams_body = false;
  };
  static bool Match(const Route& route, const std::vector<std::string>& segments,
                    std::map<std::string, std::string>* params);

  std::vector<Route> routes_;
  Authenticate authenticate_;
};

// Percent-decodes one path segment; nullopt if malformed.
std::optional<std::string> PercentDecode(const std::string& s);

// Why a raw request target is not an origin-form target the router may see
// ("/path[?query]"): absolute-form, authority-form, asterisk-form, no leading
// slash, a fragment, control bytes. nullopt when it is fine.
std::optional<std::string> OriginFormError(std::string_view target);

}  // namespace osb::api
