// REST routes for checkpoints, forks and sandbox lifetime (sandbox_routes.h).
// Saving, hibernating and waking copy a sandbox's files: they run on the
// sandbox service's long-call executor, never on a REST handler thread.
#include <nlohmann/json.hpp>

#include "api/json_body.h"
#include "api/routes.h"
#include "api/sandbox_routes.h"

namespace osb::api {
namespace {

using controlplane::CheckpointView;
using controlplane::SandboxView;
using nlohmann::json;

json CheckpointJson(const CheckpointView& c) {
  return {{"checkpointID", c.id},
          {"sandboxID", c.sandbox_id},
          {"projectId", c.project_id ? json(*c.project_id) : json(nullptr)},
          {"templateID", c.template_id},
          {"cpuCount", c.cpu_count},
          {"memoryMB", c.memory_mb},
          {"timeoutSec", c.timeout_sec},
          {"egressAllowlist", c.egress_allowlist},
          {"envNames", c.env_names},
          {"templateDigest", c.template_digest.empty() ? json(nullptr) : json(c.template_digest)},
          {"diskMB", c.disk_mb},
          {"sizeBytes", c.size_bytes},
          {"createdAt", c.created_at}};
}

// Runs `call` off the handler thread and delivers its JSON (or error).
template <typename T, typename ToJson>
Response Deferred(controlplane::SandboxService& sandboxes, const std::string& org, int status,
                  std::function<Result<T>()> call, ToJson to_json) {
  Response r;
  r.deferred = [&sandboxes, org, status, call = std::move(call), to_json](Deliver deliver) {
    Status admitted = sandboxes.RunLong(org, [call, to_json, status, deliver] {
      auto out = call();
      if (!out) return deliver(ErrorResponse(out.error()));
      deliver(JsonResponse(status, to_json(*out)));
    });
    if (!admitted) deliver(ErrorResponse(admitted.error()));
  };
  return r;
}

}  // namespace

void RegisterCheckpointRoutes(Router& router, controlplane::SandboxService& sandboxes) {
  router.Add("POST", "/api/sandboxes/{id}/checkpoints", [&sandboxes](Request& req) {
    if (auto j = JsonBody::Parse(req.body.empty() ? "{}" : req.body, {}); !j) return ErrorResponse(j.error());
    std::function<Result<CheckpointView>()> call = [&sandboxes, org = req.org_id, id = req.Param("id")] {
      return sandboxes.CreateCheckpoint(org, id);
    };
    return Deferred(sandboxes, req.org_id, 201, std::move(call), CheckpointJson);
  }, KeyScope::kSandbox);
  router.Add("GET", "/api/sandboxes/{id}/checkpoints", [&sandboxes](Request& req) {
    auto list = sandboxes.ListCheckpoints(req.org_id, req.Param("id"));
    if (!list) return ErrorResponse(list.error());
    json out = json::array();
    for (const auto& c : *list) out.push_back(CheckpointJson(c));
    return JsonResponse(200, out);
  }, KeyScope::kSandbox);
  router.Add("DELETE", "/api/sandboxes/{id}/checkpoints/{checkpoint}", [&sandboxes](Request& req) {
    if (Status st = sandboxes.DeleteCheckpoint(req.org_id, req.Param("checkpoint"), req.Param("id")); !st)
      return ErrorResponse(st.error());
    return NoContent();
  }, KeyScope::kSandbox);
  router.Add("GET", "/api/checkpoints", [&sandboxes](Request& req) {
    auto list = sandboxes.ListCheckpoints(req.org_id, std::nullopt);
    if (!list) return ErrorResponse(list.error());
    json out = json::array();
    for (const auto& c : *list) out.push_back(CheckpointJson(c));
    return JsonResponse(200, out);
  }, KeyScope::kSandbox);
  router.Add("POST", "/api/sandboxes/{id}/timeout", [&sandboxes](Request& req) {
    auto j = JsonBody::Parse(req.body, {"timeoutSec"});
    if (!j) return ErrorResponse(j.error());
    auto t = j->Int("timeoutSec");
    if (!t) return ErrorResponse(t.error());
    if (!*t) return ErrorResponse(MakeError(ErrorCode::kInvalidArgument, "timeoutSec: required"));
    auto v = sandboxes.SetTimeout(req.org_id, req.Param("id"), **t);
    if (!v) return ErrorResponse(v.error());
    return JsonResponse(200, SandboxViewJson(*v));
  }, KeyScope::kSandbox);
  router.Add("POST", "/api/sandboxes/{id}/hibernate", [&sandboxes](Request& req) {
    std::function<Result<SandboxView>()> call = [&sandboxes, org = req.org_id, id = req.Param("id")] {
      return sandboxes.Hibernate(org, id);
    };
    return Deferred(sandboxes, req.org_id, 200, std::move(call), SandboxViewJson);
  }, KeyScope::kSandbox);
  router.Add("POST", "/api/sandboxes/{id}/wake", [&sandboxes](Request& req) {
    std::function<Result<SandboxView>()> call = [&sandboxes, org = req.org_id, id = req.Param("id")] {
      return sandboxes.Wake(org, id);
    };
    return Deferred(sandboxes, req.org_id, 200, std::move(call), SandboxViewJson);
  }, KeyScope::kSandbox);
}

}  // namespace osb::api
