// /healthz, /readyz, /api/projects and /api/secret-groups.
#include <nlohmann/json.hpp>

#include "api/json_body.h"
#include "api/routes.h"
#include "controlplane/sandbox_metadata.h"

namespace osb::api {
namespace {

using controlplane::ProjectFields;
using controlplane::ProjectView;
using nlohmann::json;

json ProjectJson(const ProjectView& v) {
  const auto& p = v.project;
  return {{"id", p.id},
          {"orgId", p.org_id},
          {"name", p.name},
          {"template", p.template_id},
          {"cpuCount", p.cpu_count},
          {"memoryMB", p.memory_mb},
          {"diskMB", p.disk_mb},
          {"timeoutSec", p.timeout_sec},
          {"egressAllowlist", p.egress_allowlist},
          {"secretGroups", v.secret_group_names},
          {"createdAt", p.created_at},
          {"updatedAt", p.updated_at}};
}

json GroupJson(const store::SecretGroup& g) {
  return {{"id", g.id}, {"orgId", g.org_id}, {"name", g.name}, {"createdAt", g.created_at},
          {"updatedAt", g.updated_at}};
}

Result<ProjectFields> ParseProjectFields(const std::string& body) {
  auto j = JsonBody::Parse(body, {"name", "template", "cpuCount", "memoryMB", "diskMB", "timeoutSec",
                                  "egressAllowlist", "secretGroups",
                                  // read-only fields a client may echo back from a GET
                                  "id", "orgId", "createdAt", "updatedAt"});
  if (!j) return j.error();
  ProjectFields f;
  auto name = j->String("name");
  if (!name) return name.error();
  f.name = *name;
  auto tmpl = j->String("template");
  if (!tmpl) return tmpl.error();
  f.template_id = *tmpl;
  for (auto [field, slot] : {std::pair{"cpuCount", &f.cpu_count}, std::pair{"memoryMB", &f.memory_mb},
                             std::pair{"diskMB", &f.disk_mb}, std::pair{"timeoutSec", &f.timeout_sec}}) {
    auto v = j->Int(field);
    if (!v) return v.error();
    *slot = *v;
  }
  auto allow = j->StringList("egressAllowlist");
  if (!allow) return allow.error();
  f.egress_allowlist = *allow;
  auto groups = j->StringList("secretGroups");
  if (!groups) return groups.error();
  f.secret_groups = *groups;
  return f;
}

}  // namespace

void RegisterHealthRoutes(Router& router, std::function<Status()> ready) {
  router.AddPublic("GET", "/healthz", [](Request&) { return JsonResponse(200, {{"status", "ok"}}); });
  router.AddPublic("GET", "/readyz", [ready = std::move(ready)](Request&) {
    const Status st = ready();
    if (st) return JsonResponse(200, {{"status", "ready"}});
    // The reason is operational (database, workers), never a secret.
    return JsonResponse(503, {{"status", "not ready"}, {"error", st.error().message}});
  });
}

// Reading projects is open to sandbox-scope keys; writing them is admin.
void RegisterProjectRoutes(Router& router, controlplane::ProjectService& projects) {
  router.Add("POST", "/api/projects", [&projects](Request& req) {
    auto fields = ParseProjectFields(req.body);
    if (!fields) return ErrorResponse(fields.error());
    auto created = projects.Create(req.org_id, *fields);
    if (!created) return ErrorResponse(created.error());
    return JsonResponse(201, ProjectJson(*created));
  });
  router.Add("GET", "/api/projects", [&projects](Request& req) {
    auto list = projects.List(req.org_id);
    if (!list) return ErrorResponse(list.error());
    json out = json::array();
    for (const auto& v : *list) out.push_back(ProjectJson(v));
    return JsonResponse(200, out);
  }, KeyScope::kSandbox);
  router.Add("GET", "/api/projects/{project}", [&projects](Request& req) {
    auto v = projects.Get(req.org_id, req.Param("project"));
    if (!v) return ErrorResponse(v.error());
    return JsonResponse(200, ProjectJson(*v));
  }, KeyScope::kSandbox);
  auto update = [&projects](Request& req) {
    auto fields = ParseProjectFields(req.body);
    if (!fields) return ErrorResponse(fields.error());
    auto v = projects.Update(req.org_id, req.Param("project"), *fields);
    if (!v) return ErrorResponse(v.error());
    return JsonResponse(200, ProjectJson(*v));
  };
  router.Add("PUT", "/api/projects/{project}", update);
  router.Add("PATCH", "/api/projects/{project}", update);
  router.Add("DELETE", "/api/projects/{project}", [&projects](Request& req) {
    if (Status st = projects.Delete(req.org_id, req.Param("project")); !st) return ErrorResponse(st.error());
    return NoContent();
  });
}

void RegisterGroupRoutes(Router& router, controlplane::GroupService& groups) {
  auto parse_name = [](const std::string& body) -> Result<std::string> {
    auto j = JsonBody::Parse(body, {"name", "id", "orgId", "createdAt", "updatedAt"});
    if (!j) return j.error();
    auto name = j->String("name");
    if (!name) return name.error();
    if (!*name) return MakeError(ErrorCode::kInvalidArgument, "name: is required");
    return **name;
  };
  router.Add("POST", "/api/secret-groups", [&groups, parse_name](Request& req) {
    auto name = parse_name(req.body);
    if (!name) return ErrorResponse(name.error());
    auto g = groups.Create(req.org_id, *name);
    if (!g) return ErrorResponse(g.error());
    return JsonResponse(201, GroupJson(*g));
  });
  router.Add("GET", "/api/secret-groups", [&groups](Request& req) {
    auto list = groups.List(req.org_id);
    if (!list) return ErrorResponse(list.error());
    json out = json::array();
    for (const auto& g : *list) out.push_back(GroupJson(g));
    return JsonResponse(200, out);
  });
  router.Add("GET", "/api/secret-groups/{group}", [&groups](Request& req) {
    auto g = groups.Get(req.org_id, req.Param("group"));
    if (!g) return ErrorResponse(g.error());
    return JsonResponse(200, GroupJson(*g));
  });
  auto rename = [&groups, parse_name](Request& req) {
    auto name = parse_name(req.body);
    if (!name) return ErrorResponse(name.error());
    auto g = groups.Rename(req.org_id, req.Param("group"), *name);
    if (!g) return ErrorResponse(g.error());
    return JsonResponse(200, GroupJson(*g));
  };
  router.Add("PUT", "/api/secret-groups/{group}", rename);
  router.Add("PATCH", "/api/secret-groups/{group}", rename);
  router.Add("DELETE", "/api/secret-groups/{group}", [&groups](Request& req) {
    if (Status st = groups.Delete(req.org_id, req.Param("group")); !st) return ErrorResponse(st.error());
    return NoContent();
  });
}

Result<controlplane::SandboxRequest> ParseSandboxRequest(const std::string& body) {
  auto j = JsonBody::Parse(body, {"project", "templateID", "cpuCount", "memoryMB", "diskMB", "timeout", "envs",
                                  "egressAllowlist", "fromCheckpoint", "metadata"});
  if (!j) return j.error();
  controlplane::SandboxRequest r;
  auto project = j->String("project");
  if (!project) return project.error();
  r.project = *project;
  auto tmpl = j->String("templateID");
  if (!tmpl) return tmpl.error();
  r.template_id = *tmpl;
  for (auto [field, slot] : {std::pair{"cpuCount", &r.cpu_count}, std::pair{"memoryMB", &r.memory_mb},
                             std::pair{"diskMB", &r.disk_mb}, std::pair{"timeout", &r.timeout_sec}}) {
    auto v = j->Int(field);
    if (!v) return v.error();
    *slot = *v;
  }
  auto envs = j->StringMap("envs");
  if (!envs) return envs.error();
  if (*envs) r.envs = std::move(**envs);
  auto allow = j->StringList("egressAllowlist");
  if (!allow) return allow.error();
  r.egress_allowlist = *allow;
  auto from = j->String("fromCheckpoint");
  if (!from) return from.error();
  if (*from && (**from).empty()) return MakeError(ErrorCode::kInvalidArgument, "fromCheckpoint: must not be empty");
  r.from_checkpoint = *from;
  auto metadata = j->StringMap("metadata");
  if (!metadata) return metadata.error();
  if (*metadata) r.metadata = std::move(**metadata);
  if (Status m = controlplane::ValidateSandboxMetadata(r.metadata); !m) return m.error();
  return r;
}

}  // namespace osb::api
