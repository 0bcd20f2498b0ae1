// Secret routes under projects and under org-level secret groups. Values go
// in (PUT body) and never come out: responses carry names and metadata only.
#include <nlohmann/json.hpp>

#include "api/json_body.h"
#include "api/routes.h"
#include "common/secret_kinds.h"
#include "common/secure_memory.h"

namespace osb::api {
namespace {

using controlplane::SecretScope;
using nlohmann::json;

json MetadataJson(const controlplane::SecretMetadata& m) {
  json out = {{"name", m.name}, {"allowedHosts", m.allowed_hosts}, {"createdAt", m.created_at},
              {"updatedAt", m.updated_at}, {"kind", m.kind}};
  // Non-value kinds: the non-secret material fields (secret ones never).
  if (m.kind != "value" && !m.public_material.empty()) {
    json pub = json::parse(m.public_material, nullptr, false);
    if (pub.is_object()) out["material"] = std::move(pub);
  }
  out["allowedRequests"] = json::parse(RequestRulesToJson(m.allowed_requests));
  out["onDisallowedRequest"] = m.on_disallowed_request;
  return out;
}

void Register(Router& router, controlplane::SecretService& secrets, SecretScope scope,
              const std::string& base, const std::string& param) {
  router.Add("PUT", base + "/secrets/{name}", [&secrets, scope, param](Request& req) {
    auto j = JsonBody::Parse(req.body, {"value", "allowedHosts", "name", "kind", "material", "allowedRequests",
                                        "onDisallowedRequest"});
    SecureWipe(req.body);
    if (!j) return ErrorResponse(j.error());
    controlplane::SecretService::Options options;
    auto kind = j->String("kind");
    if (!kind) return ErrorResponse(kind.error());
    if (*kind) options.kind = **kind;
    if (!ParseSecretKind(options.kind)) {
      return ErrorResponse(400, "kind: must be value, hmac, aws-sigv4 or oauth2-refresh");
    }
    const bool is_value = options.kind == "value";
    // value for kind "value"; material (a JSON object) for the others.
    auto value = is_value ? j->String("value") : j->ObjectText("material");
    if (!value) return ErrorResponse(value.error());
    struct Wipe {
      std::optional<std::string>& v;
      ~Wipe() {
        if (v) SecureWipe(*v);
      }
    } wipe{*value};
    // The field of the other shape first: it is the one the caller got wrong.
    {
      auto other = is_value ? j->ObjectText("material") : j->String("value");
      const bool present = !other || other->has_value();
      if (other && *other) SecureWipe(**other);
      if (present) {
        return ErrorResponse(400, is_value ? "material: only for kinds hmac, aws-sigv4, oauth2-refresh (use value)"
                                           : "value: a " + options.kind + " secret takes material, not value");
      }
    }
    if (!*value) return ErrorResponse(400, is_value ? "value: is required" : "material: is required for kind " + options.kind);
    auto hosts = j->StringList("allowedHosts");
    if (!hosts) return ErrorResponse(hosts.error());
    auto rules_text = j->ArrayText("allowedRequests");
    if (!rules_text) return ErrorResponse(rules_text.error());
    if (*rules_text) {
      auto rules = RequestRulesFromJson(**rules_text, "allowedRequests");
      if (!rules) return ErrorResponse(rules.error());
      options.allowed_requests = std::move(*rules);
    }
    auto on_disallowed = j->String("onDisallowedRequest");
    if (!on_disallowed) return ErrorResponse(on_disallowed.error());
    if (*on_disallowed) options.on_disallowed_request = **on_disallowed;
    auto set = secrets.Set(req.org_id, scope, req.Param(param), req.Param("name"), **value,
                           hosts->value_or(std::vector<std::string>{}), options);
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
