#include "api/sandbox_routes.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "api/json_body.h"
#include "api/routes.h"
#include "common/memo_cache.h"

namespace osb::api {
namespace {

using controlplane::SandboxView;
using nlohmann::json;

constexpr int kMaxExecTimeoutSec = 86400;
constexpr size_t kMaxRenderedSandboxes = 20000;

json SandboxJson(const SandboxView& v) {
  json j = {{"sandboxID", v.id},
            {"status", v.status},
            {"projectId", v.project_id ? json(*v.project_id) : json(nullptr)},
            {"templateID", v.template_id},
            {"cpuCount", v.cpu_count},
            {"memoryMB", v.memory_mb},
            {"diskMB", v.disk_mb},
            {"timeoutSec", v.timeout_sec},
            {"egressAllowlist", v.egress_allowlist},
            {"startedAt", v.started_at},
            {"endAt", v.end_at}};
  if (v.ended_at) j["endedAt"] = *v.ended_at;
  j["metadata"] = v.metadata;
  return j;
}

Result<controlplane::ExecCommand> ParseExec(const std::string& body) {
  auto j = JsonBody::Parse(body, {"cmd", "args", "envs", "cwd", "timeout"});
  if (!j) return j.error();
  controlplane::ExecCommand c;
  auto cmd = j->String("cmd");
  if (!cmd) return cmd.error();
  if (!*cmd || (*cmd)->empty()) return MakeError(ErrorCode::kInvalidArgument, "cmd: required");
  c.cmd = **cmd;
  auto args = j->StringList("args");
  if (!args) return args.error();
  if (*args) c.args = **args;
  auto envs = j->StringMap("envs");
  if (!envs) return envs.error();
  if (*envs) c.envs = **envs;
  auto cwd = j->String("cwd");
  if (!cwd) return cwd.error();
  if (*cwd) {
    if (!(*cwd)->empty() && (*cwd)->front() != '/') {
      return MakeError(ErrorCode::kInvalidArgument, "cwd: must be an absolute path");
    }
    c.cwd = **cwd;
  }
  auto timeout = j->Int("timeout");
  if (!timeout) return timeout.error();
  if (*timeout) {
    if (**timeout < 1 || **timeout > kMaxExecTimeoutSec) {
      return MakeError(ErrorCode::kInvalidArgument, "timeout: must be 1-86400 seconds");
    }
    c.timeout_sec = **timeout;
  }
  return c;
}

}  // namespace

// Every route here is open to sandbox-scope keys (a CI job or an agent
// harness creates, uses and deletes sandboxes).
void RegisterSandboxRoutes(Router& router, controlplane::SandboxService& sandboxes) {
  router.Add("POST", "/api/sandboxes", [&sandboxes](Request& req) {
    auto request = ParseSandboxRequest(req.body);
    if (!request) return ErrorResponse(request.error());
    auto created = sandboxes.Create(req.org_id, *request);
    if (!created) return ErrorResponse(created.error());
    return JsonResponse(201, SandboxJson(*created));
  }, KeyScope::kSandbox);
  // Each sandbox's JSON is rendered once per change of its view, not on
  // every listing (GET /api/sandboxes with hundreds of rows was bound by
  // building and dumping the JSON tree).
  auto rendered = std::make_shared<MemoCache<SandboxView, std::string>>(kMaxRenderedSandboxes);
  router.Add("GET", "/api/sandboxes", [&sandboxes, rendered](Request& req) {
    auto list = sandboxes.List(req.org_id);
    if (!list) return ErrorResponse(list.error());
    Response r;
    r.body = "[";
    for (size_t i = 0; i < list->size(); ++i) {
      const SandboxView& v = (*list)[i];
      if (i > 0) r.body += ',';
      r.body += rendered->Get(v.id, v, [](const SandboxView& view) { return Dump(SandboxJson(view)); });
    }
    r.body += ']';
    return r;
  }, KeyScope::kSandbox);
  router.Add("GET", "/api/sandboxes/{id}", [&sandboxes](Request& req) {
    auto v = sandboxes.Get(req.org_id, req.Param("id"));
    if (!v) return ErrorResponse(v.error());
    return JsonResponse(200, SandboxJson(*v));
  }, KeyScope::kSandbox);
  router.Add("DELETE", "/api/sandboxes/{id}", [&sandboxes](Request& req) {
    if (Status st = sandboxes.Delete(req.org_id, req.Param("id")); !st) return ErrorResponse(st.error());
    return NoContent();
  }, KeyScope::kSandbox);
  // The command is an asynchronous call to its worker: no handler thread
  // (and no executor thread) waits for it; the org's exec cap and the
  // sandbox lookup are decided here, an org over its cap gets a 429.
  router.Add("POST", "/api/sandboxes/{id}/exec/run", [&sandboxes](Request& req) {
    auto cmd = ParseExec(req.body);
    if (!cmd) return ErrorResponse(cmd.error());
    auto start = sandboxes.PrepareExec(req.org_id, req.Param("id"), std::move(*cmd));
    if (!start) return ErrorResponse(start.error());
    Response r;
    r.deferred = [start = std::move(*start)](Deliver deliver) {
      start([deliver](Result<controlplane::ExecOutcome> out) {
        if (!out) return deliver(ErrorResponse(out.error()));
        deliver(JsonResponse(200, {{"exitCode", out->exit_code},
                                   {"stdout", out->stdout_data},
                                   {"stderr", out->stderr_data},
                                   {"stdoutTruncated", out->stdout_truncated},
                                   {"stderrTruncated", out->stderr_truncated},
                                   {"truncated", {{"stdout", out->stdout_truncated}, {"stderr", out->stderr_truncated}}},
                                   {"timedOut", out->timed_out}}));
      });
    };
    return r;
  }, KeyScope::kSandbox);
}

nlohmann::json SandboxViewJson(const controlplane::SandboxView& v) { return SandboxJson(v); }

}  // namespace osb::api
