// Secret routes under projects and under org-level secret groups. Values go
// in (PUT body) and never come out: responses carry names and metadata only.
#include <nlohmann/json.hpp>

#include "api/json_body.h"
#include "api/routes.h"
#include "common/secure_memory.h"

namespace osb::api {
namespace {

using controlplane::SecretScope;
using nlohmann::json;

json MetadataJson(const controlplane::SecretMetadata& m) {
  return {{"name", m.name}, {"allowedHosts", m.allowed_hosts}, {"createdAt", m.created_at},
          {"updatedAt", m.updated_at}};
}

void Register(Router& router, controlplane::SecretService& secrets, SecretScope scope,
              const std::string& base, const std::string& param) {
  router.Add("PUT", base + "/secrets/{name}", [&secrets, scope, param](Request& req) {
    auto j = JsonBody::Parse(req.body, {"value", "allowedHosts", "name"});
    SecureWipe(req.body);
    if (!j) return ErrorResponse(j.error());
    auto value = j->String("value");
    if (!value) return ErrorResponse(value.error());
    if (!*value) return ErrorResponse(400, "value: is required");
    auto hosts = j->StringList("allowedHosts");
    if (!hosts) {
      SecureWipe(**value);
      return ErrorResponse(hosts.error());
    }
    auto set = secrets.Set(req.org_id, scope, req.Param(param), req.Param("name"), **value,
                           hosts->value_or(std::vector<std::string>{}));
    SecureWipe(**value);
    if (!set) return ErrorResponse(set.error());
    json out = MetadataJson(*set);
    if (!set->warnings.empty()) out["warnings"] = set->warnings;
    // The push to running sandboxes (live refresh): how many have the new
    // value, and which could not be reached in time (they get it when their
    // worker next restarts and refetches).
    out["refreshed"] = set->refresh.refreshed;
    out["refreshFailed"] = set->refresh.failed;
    return JsonResponse(200, out);
  });
  router.Add("GET", base + "/secrets", [&secrets, scope, param](Request& req) {
    auto list = secrets.List(req.org_id, scope, req.Param(param));
    if (!list) return ErrorResponse(list.error());
    json out = json::array();
    for (const auto& m : *list) out.push_back(MetadataJson(m));
    return JsonResponse(200, out);
  });
  router.Add("DELETE", base + "/secrets/{name}", [&secrets, scope, param](Request& req) {
    if (Status st = secrets.Delete(req.org_id, scope, req.Param(param), req.Param("name")); !st) {
      return ErrorResponse(st.error());
    }
    return NoContent();
  });
}

}  // namespace

void RegisterSecretRoutes(Router& router, controlplane::SecretService& secrets) {
  Register(router, secrets, SecretScope::kProject, "/api/projects/{project}", "project");
  Register(router, secrets, SecretScope::kGroup, "/api/secret-groups/{group}", "group");
}

}  // namespace osb::api
