#include "controlplane/sandboxes.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/secure_memory.h"
#include "crypto/random.h"
#include "proto/status_mapping.h"

namespace osb::controlplane {

namespace {

using nlohmann::json;

constexpr auto kCreateDeadline = std::chrono::seconds(60);
constexpr auto kCallDeadline = std::chrono::seconds(15);

std::unique_ptr<grpc::ClientContext> Context(std::chrono::seconds deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + deadline);
  return ctx;
}

std::string Rfc3339FromUnix(int64_t secs) {
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ConfigJson(const SandboxView& v) {
  return json{{"templateID", v.template_id},     {"cpuCount", v.cpu_count},
              {"memoryMB", v.memory_mb},         {"timeoutSec", v.timeout_sec},
              {"egressAllowlist", v.egress_allowlist}, {"startedAt", v.started_at},
              {"endAt", v.end_at}}
      .dump();
}

SandboxView ViewFromRow(const store::SandboxRow& row) {
  SandboxView v;
  v.id = row.id;
  v.status = row.status;
  v.project_id = row.project_id;
  v.worker_id = row.worker_id;
  v.ended_at = row.ended_at;
  const json c = json::parse(row.config, nullptr, false);
  if (c.is_object()) {
    v.template_id = c.value("templateID", "");
    v.cpu_count = c.value("cpuCount", 0);
    v.memory_mb = c.value("memoryMB", 0);
    v.timeout_sec = c.value("timeoutSec", 0);
    v.egress_allowlist = c.value("egressAllowlist", std::vector<std::string>{});
    v.started_at = c.value("startedAt", row.created_at);
    v.end_at = c.value("endAt", "");
  }
  return v;
}

void AddSecret(google::protobuf::RepeatedPtrField<v1::SecretSpec>* out, const ResolvedSecret& s) {
  auto* spec = out->Add();
  spec->set_name(s.name);
  spec->set_value(s.value);
  for (const auto& h : s.allowed_hosts) spec->add_allowed_hosts(h);
}

void WipeSecrets(google::protobuf::RepeatedPtrField<v1::SecretSpec>* secrets) {
  for (auto& s : *secrets) SecureWipe(*s.mutable_value());
}

}  // namespace

Result<SandboxView> SandboxService::Create(const std::string& org_id, const SandboxRequest& request) {
  auto resolved = resolver_.ResolveSandbox(org_id, request);
  if (!resolved) return resolved.error();
  auto worker = workers_.PickLeastLoaded();
  if (!worker) return worker.error();

  const std::string id = "sb-" + crypto::RandomHex(8);
  v1::CreateSandboxRequest req;
  req.set_sandbox_id(id);
  auto* cfg = req.mutable_config();
  cfg->set_project_id(resolved->project_id.value_or(""));
  cfg->set_template_id(resolved->template_id);
  cfg->set_cpu_count(resolved->cpu_count);
  cfg->set_memory_mb(resolved->memory_mb);
  cfg->set_timeout_sec(resolved->timeout_sec);
  for (const auto& h : resolved->egress_allowlist) cfg->add_egress_allowlist(h);
  for (const auto& [k, v] : resolved->envs) (*cfg->mutable_envs())[k] = v;
  for (const auto& s : resolved->secrets) AddSecret(req.mutable_secrets(), s);

  v1::SandboxInfo info;
  auto ctx = Context(kCreateDeadline);
  const grpc::Status st = worker->stub->CreateSandbox(ctx.get(), req, &info);
  WipeSecrets(req.mutable_secrets());
  if (!st.ok()) {
    spdlog::warn("sandbox create on worker {} failed: {}", worker->worker_id, st.error_message());
    auto err = proto::FromGrpcStatus(st);
    if (err.code == ErrorCode::kInternal) err.message = "worker failed to create the sandbox: " + err.message;
    return err;
  }

  SandboxView v;
  v.id = id;
  v.status = "running";
  v.project_id = resolved->project_id;
  v.template_id = resolved->template_id;
  v.cpu_count = resolved->cpu_count;
  v.memory_mb = resolved->memory_mb;
  v.timeout_sec = resolved->timeout_sec;
  v.egress_allowlist = resolved->egress_allowlist;
  v.worker_id = worker->worker_id;
  v.started_at = Rfc3339FromUnix(info.started_at_unix_ms() / 1000);
  v.end_at = Rfc3339FromUnix(info.end_at_unix_ms() / 1000);
  store::SandboxRow row{id, org_id, v.project_id, v.worker_id, "running", ConfigJson(v),
                        store::NowRfc3339(), std::nullopt};
  if (auto s = store_.InsertSandbox(row); !s) {
    // Without a row nobody could reach or delete it: undo.
    v1::DestroySandboxRequest d;
    d.set_sandbox_id(id);
    v1::DestroySandboxResponse dr;
    auto dctx = Context(kCallDeadline);
    (void)worker->stub->DestroySandbox(dctx.get(), d, &dr);
    return s.error();
  }
  spdlog::info("sandbox {} created on worker {} ({} secret(s))", id, v.worker_id, resolved->secrets.size());
  return v;
}

Result<SandboxView> SandboxService::Get(const std::string& org_id, const std::string& id) {
  auto row = store_.GetSandbox(org_id, id);
  if (!row) return row.error();
  return ViewFromRow(*row);
}

Result<std::vector<SandboxView>> SandboxService::List(const std::string& org_id) {
  auto rows = store_.ListSandboxes(org_id);
  if (!rows) return rows.error();
  std::vector<SandboxView> out;
  for (const auto& r : *rows) out.push_back(ViewFromRow(r));
  return out;
}

Status SandboxService::Delete(const std::string& org_id, const std::string& id) {
  auto row = store_.GetSandbox(org_id, id);
  if (!row) return row.error();
  if (row->status == "running") {
    auto stub = workers_.StubFor(row->worker_id);
    if (!stub) return stub.error();
    v1::DestroySandboxRequest req;
    req.set_sandbox_id(id);
    v1::DestroySandboxResponse resp;
    auto ctx = Context(kCallDeadline);
    const grpc::Status st = (*stub)->DestroySandbox(ctx.get(), req, &resp);
    // NOT_FOUND: the worker already lost it (timeout, restart): just record.
    if (!st.ok() && st.error_code() != grpc::StatusCode::NOT_FOUND) return proto::FromGrpcStatus(st);
  }
  return store_.DeleteSandbox(id);
}

Result<ExecOutcome> SandboxService::Exec(const std::string& org_id, const std::string& id,
                                         const ExecCommand& cmd) {
  auto row = store_.GetSandbox(org_id, id);
  if (!row) return row.error();
  if (row->status != "running") {
    return MakeError(ErrorCode::kConflict, "sandbox " + id + " is not running");
  }
  auto stub = workers_.StubFor(row->worker_id);
  if (!stub) return stub.error();
  v1::ExecRequest req;
  req.set_sandbox_id(id);
  req.set_cmd(cmd.cmd);
  for (const auto& a : cmd.args) req.add_args(a);
  for (const auto& [k, v] : cmd.envs) (*req.mutable_envs())[k] = v;
  req.set_cwd(cmd.cwd);
  req.set_timeout_sec(cmd.timeout_sec);
  v1::ExecResponse resp;
  auto ctx = Context(std::chrono::seconds(cmd.timeout_sec + 30));
  const grpc::Status st = (*stub)->Exec(ctx.get(), req, &resp);
  if (!st.ok()) {
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
      (void)store_.StopSandbox(id, store::NowRfc3339());
      return MakeError(ErrorCode::kConflict, "sandbox " + id + " is not running");
    }
    return proto::FromGrpcStatus(st);
  }
  return ExecOutcome{resp.exit_code(),      resp.stdout(),           resp.stderr(),
                     resp.stdout_truncated(), resp.stderr_truncated(), resp.timed_out()};
}

void SandboxService::OnSecretChange(const SecretChange& change) {
  for (const auto& project_id : change.affected_project_ids) RefreshNames(change.org_id, project_id, {change.name});
}

void SandboxService::OnProjectGroupsChanged(const std::string& org_id, const std::string& project_id,
                                            const std::vector<std::string>& group_ids) {
  std::vector<std::string> names;
  for (const auto& group_id : group_ids) {
    auto rows = store_.ListSecrets(group_id, /*with_ciphertext=*/false);
    if (!rows) {
      spdlog::warn("groups of project {} changed but group {} cannot be listed: {}", project_id, group_id,
                   rows.error().message);
      continue;
    }
    for (const auto& row : *rows) {
      if (std::find(names.begin(), names.end(), row.name) == names.end()) names.push_back(row.name);
    }
  }
  if (!names.empty()) RefreshNames(org_id, project_id, names);
}

void SandboxService::RefreshNames(const std::string& org_id, const std::string& project_id,
                                  const std::vector<std::string>& names) {
  auto running = store_.ListRunningSandboxes(std::nullopt, project_id);
  if (!running || running->empty()) return;
  // The effective secrets now (a group's secret may be shadowed by the
  // project's own one, or by an earlier group, of the same name).
  SandboxRequest probe;
  probe.project = project_id;
  auto resolved = resolver_.ResolveSandbox(org_id, probe);
  if (!resolved) {
    spdlog::warn("secrets of project {} changed but it cannot be resolved: {}", project_id,
                 resolved.error().message);
    return;
  }
  for (const auto& name : names) {
    const ResolvedSecret* current = nullptr;
    for (const auto& s : resolved->secrets) {
      if (s.name == name) current = &s;
    }
    for (const auto& sb : *running) {
      auto stub = workers_.StubFor(sb.worker_id);
      if (!stub) continue;
      v1::UpdateSecretRequest req;
      req.set_sandbox_id(sb.id);
      req.set_name(name);
      if (current) {
        req.set_value(current->value);
        for (const auto& h : current->allowed_hosts) req.add_allowed_hosts(h);
      } else {
        req.set_deleted(true);
      }
      v1::UpdateSecretResponse resp;
      auto ctx = Context(kCallDeadline);
      const grpc::Status st = (*stub)->UpdateSecret(ctx.get(), req, &resp);
      SecureWipe(*req.mutable_value());
      if (!st.ok()) {
        spdlog::warn("could not refresh secret {} in sandbox {}: {}", name, sb.id, st.error_message());
      } else {
        spdlog::info("secret {} {} in sandbox {}{}", name, current ? "refreshed" : "removed", sb.id,
                     resp.applied() ? "" : " (sandbox has no token for it)");
      }
    }
  }
}

void SandboxService::EndProjectSandboxes(const std::string& org_id, const std::string& project_id) {
  auto running = store_.ListRunningSandboxes(std::nullopt, project_id);
  if (!running) return;
  for (const auto& sb : *running) {
    if (sb.org_id != org_id) continue;
    if (Status st = Delete(org_id, sb.id); !st) {
      spdlog::warn("project {} deleted but sandbox {} could not be ended: {}", project_id, sb.id,
                   st.error().message);
    } else {
      spdlog::info("sandbox {} ended with its project {}", sb.id, project_id);
    }
  }
}

void SandboxService::ReconcileWorker(const std::string& worker_id, const std::vector<std::string>& running_ids) {
  auto rows = store_.ListRunningSandboxes(worker_id, std::nullopt);
  if (!rows) return;
  for (const auto& row : *rows) {
    if (std::find(running_ids.begin(), running_ids.end(), row.id) == running_ids.end()) {
      spdlog::info("sandbox {} is no longer running on worker {}", row.id, worker_id);
      (void)store_.StopSandbox(row.id, store::NowRfc3339());
    }
  }
}

Result<std::vector<v1::SandboxSecrets>> SandboxService::SecretsForWorker(const std::string& worker_id,
                                                                         const std::vector<std::string>& ids) {
  if (worker_id.empty()) return std::vector<v1::SandboxSecrets>{};  // the store reads "" as "any worker"
  auto rows = store_.ListRunningSandboxes(worker_id, std::nullopt);
  if (!rows) return rows.error();
  std::vector<v1::SandboxSecrets> out;
  for (const auto& row : *rows) {
    if (std::find(ids.begin(), ids.end(), row.id) == ids.end()) continue;
    v1::SandboxSecrets entry;
    entry.set_sandbox_id(row.id);
    const SandboxView view = ViewFromRow(row);
    for (const auto& h : view.egress_allowlist) entry.add_egress_allowlist(h);
    if (row.project_id) {
      SandboxRequest probe;
      probe.project = *row.project_id;
      auto resolved = resolver_.ResolveSandbox(row.org_id, probe);
      if (!resolved) return resolved.error();
      for (const auto& s : resolved->secrets) AddSecret(entry.mutable_secrets(), s);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace osb::controlplane
