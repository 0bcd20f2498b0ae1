// /api/api-keys: an org's API keys. The key itself appears exactly once, in
// the answer to its creation; listings carry ids, names, scopes and dates
// only. Every route here needs an admin key (the router's default scope):
// a sandbox key can neither see, create (escalate) nor delete keys.
#include <nlohmann/json.hpp>

#include "api/json_body.h"
#include "api/routes.h"
#include "common/secure_memory.h"
#include "common/time_text.h"

namespace osb::api {
namespace {

using nlohmann::json;

// Longest expiresIn we take (a longer-lived key wants expiresAt, or none).
constexpr std::chrono::hours kMaxExpiresIn{24 * 3650};

json KeyJson(const controlplane::ApiKeyView& k) {
  json j = {{"id", k.id}, {"name", k.name}, {"scope", k.scope}, {"createdAt", k.created_at}};
  j["expiresAt"] = k.expires_at ? json(*k.expires_at) : json(nullptr);
  return j;
}

// expiresAt (RFC 3339) or expiresIn ("30d", "12h", "45m", "90s"), not both.
Result<std::optional<std::chrono::system_clock::time_point>> ParseExpiry(const JsonBody& j) {
  auto at = j.String("expiresAt");
  if (!at) return at.error();
  auto in = j.String("expiresIn");
  if (!in) return in.error();
  if (*at && *in) return MakeError(ErrorCode::kInvalidArgument, "expiresAt, expiresIn: give at most one");
  if (*at) {
    auto t = ParseRfc3339(**at);
    if (!t) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "expiresAt: must be an RFC 3339 date-time such as 2027-01-31T12:00:00Z");
    }
    return std::optional(*t);
  }
  if (*in) {
    auto d = ParseDuration(**in, kMaxExpiresIn);
    if (!d) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "expiresIn: must be a positive number with a unit s, m, h or d (e.g. \"30d\"), at "
                       "most 3650d");
    }
    return std::optional(std::chrono::time_point_cast<std::chrono::system_clock::duration>(
        std::chrono::system_clock::now() + *d));
  }
  return std::optional<std::chrono::system_clock::time_point>();
}

}  // namespace

void RegisterApiKeyRoutes(Router& router, controlplane::ApiKeyService& keys) {
  router.Add("POST", "/api/api-keys", [&keys](Request& req) {
    auto j = JsonBody::Parse(req.body, {"name", "scope", "expiresAt", "expiresIn"});
    if (!j) return ErrorResponse(j.error());
    auto name = j->String("name");
    if (!name) return ErrorResponse(name.error());
    if (!*name) return ErrorResponse(400, "name: is required");
    auto scope = j->String("scope");
    if (!scope) return ErrorResponse(scope.error());
    auto expiry = ParseExpiry(*j);
    if (!expiry) return ErrorResponse(expiry.error());
    auto created = keys.Create(req.org_id, **name, scope->value_or(controlplane::kDefaultKeyScope), *expiry);
    if (!created) return ErrorResponse(created.error());
    json out = KeyJson(*created);
    out["key"] = created->key;
    SecureWipe(created->key);
    Response resp = JsonResponse(201, out);
    WipeJsonStrings(out);
    resp.headers.emplace_back("Cache-Control", "no-store");
    return resp;
  });
  router.Add("GET", "/api/api-keys", [&keys](Request& req) {
    auto list = keys.List(req.org_id);
    if (!list) return ErrorResponse(list.error());
    json out = json::array();
    for (const auto& k : *list) out.push_back(KeyJson(k));
    return JsonResponse(200, out);
  });
  router.Add("DELETE", "/api/api-keys/{id}", [&keys](Request& req) {
    if (Status st = keys.Delete(req.org_id, req.Param("id")); !st) return ErrorResponse(st.error());
    return NoContent();
  });
}

}  // namespace osb::api
