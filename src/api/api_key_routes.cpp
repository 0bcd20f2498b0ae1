// /api/api-keys: an org's API keys. The key itself appears exactly once, in
// the answer to its creation; listings carry ids, names and dates only.
#include <nlohmann/json.hpp>

#include "api/json_body.h"
#include "api/routes.h"
#include "common/secure_memory.h"

namespace osb::api {
namespace {

using nlohmann::json;

json KeyJson(const controlplane::ApiKeyView& k) {
  return {{"id", k.id}, {"name", k.name}, {"createdAt", k.created_at}};
}

}  // namespace

void RegisterApiKeyRoutes(Router& router, controlplane::ApiKeyService& keys) {
  router.Add("POST", "/api/api-keys", [&keys](Request& req) {
    auto j = JsonBody::Parse(req.body, {"name"});
    if (!j) return ErrorResponse(j.error());
    auto name = j->String("name");
    if (!name) return ErrorResponse(name.error());
    if (!*name) return ErrorResponse(400, "name: is required");
    auto created = keys.Create(req.org_id, **name);
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
