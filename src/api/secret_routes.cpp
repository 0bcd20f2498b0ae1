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
    // The push to running sandboxes (live refresh) runs on the sandbox
    // service's refresh executor under its deadline; no thread waits for
    // it. The answer says how many have the new value, and which could not
    // be reached in time (they get it when their worker next restarts and
    // refetches).
    Response r;
    r.deferred = [ticket = set->refresh, out = std::move(out)](Deliver deliver) mutable {
      ticket->Then([deliver, out = std::move(out)](controlplane::RefreshReport report) mutable {
        out["refreshed"] = report.refreshed;
        out["refreshFailed"] = report.failed;
        deliver(JsonResponse(200, out));
      });
    };
    return r;
  });
  router.Add("GET", base + "/secrets", [&secrets, scope, param](Request& req) {
    auto list = secrets.List(req.org_id, scope, req.Param(param));
    if (!list) return ErrorResponse(list.error());
    json out = json::array();
    for (const auto& m : *list) out.push_back(MetadataJson(m));
    return JsonResponse(200, out);
  });
  router.Add("DELETE", base + "/secrets/{name}", [&secrets, scope, param](Request& req) {
    std::shared_ptr<controlplane::RefreshTicket> refresh;
    if (Status st = secrets.Delete(req.org_id, scope, req.Param(param), req.Param("name"), &refresh); !st) {
      return ErrorResponse(st.error());
    }
    // 204 once the removal reached the running sandboxes (or the deadline
    // passed), without a thread waiting for it.
    Response r;
    r.deferred = [refresh](Deliver deliver) {
      refresh->Then([deliver](controlplane::RefreshReport) { deliver(NoContent()); });
    };
    return r;
  });
}

}  // namespace

void RegisterSecretRoutes(Router& router, controlplane::SecretService& secrets) {
  Register(router, secrets, SecretScope::kProject, "/api/projects/{project}", "project");
  Register(router, secrets, SecretScope::kGroup, "/api/secret-groups/{group}", "group");
}

}  // namespace osb::api
