#include "controlplane/grpc_worker_client.h"

#include <grpcpp/grpcpp.h>

#include "common/secure_memory.h"
#include "proto/status_mapping.h"
#include "proto/worker.grpc.pb.h"

namespace osb::controlplane {
namespace {

std::unique_ptr<grpc::ClientContext> Context(Deadline deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(deadline);
  return ctx;
}

Error FromStatus(const grpc::Status& st) { return proto::FromGrpcStatus(st); }

class GrpcWorkerClient final : public WorkerClient {
 public:
  explicit GrpcWorkerClient(std::shared_ptr<grpc::Channel> channel) : stub_(v1::Worker::NewStub(std::move(channel))) {}

  Result<StartedSandbox> Create(const SandboxSpec& spec, Deadline deadline) override {
    v1::CreateSandboxRequest req;
    req.set_sandbox_id(spec.id);
    auto* cfg = req.mutable_config();
    cfg->set_project_id(spec.project_id);
    cfg->set_template_id(spec.template_id);
    cfg->set_cpu_count(spec.cpu_count);
    cfg->set_memory_mb(spec.memory_mb);
    cfg->set_timeout_sec(spec.timeout_sec);
    cfg->set_disk_mb(spec.disk_mb);
    for (const auto& h : spec.egress_allowlist) cfg->add_egress_allowlist(h);
    for (const auto& [k, v] : spec.envs) (*cfg->mutable_envs())[k] = v;
    for (const auto& s : spec.secrets) {
      auto* out = req.add_secrets();
      out->set_name(s.name);
      out->set_value(s.value);
      for (const auto& h : s.allowed_hosts) out->add_allowed_hosts(h);
    }
    v1::SandboxInfo info;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->CreateSandbox(ctx.get(), req, &info);
    for (auto& s : *req.mutable_secrets()) SecureWipe(*s.mutable_value());
    if (!st.ok()) return FromStatus(st);
    return StartedSandbox{info.started_at_unix_ms(), info.end_at_unix_ms()};
  }

  Status Destroy(const std::string& sandbox_id, Deadline deadline) override {
    v1::DestroySandboxRequest req;
    req.set_sandbox_id(sandbox_id);
    v1::DestroySandboxResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->DestroySandbox(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    return {};
  }

  Result<ExecOutcome> Exec(const std::string& sandbox_id, const ExecCommand& cmd, Deadline deadline) override {
    v1::ExecRequest req;
    req.set_sandbox_id(sandbox_id);
    req.set_cmd(cmd.cmd);
    for (const auto& a : cmd.args) req.add_args(a);
    for (const auto& [k, v] : cmd.envs) (*req.mutable_envs())[k] = v;
    req.set_cwd(cmd.cwd);
    req.set_timeout_sec(cmd.timeout_sec);
    v1::ExecResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->Exec(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    return ExecOutcome{resp.exit_code(),        resp.stdout(),           resp.stderr(),
                       resp.stdout_truncated(), resp.stderr_truncated(), resp.timed_out()};
  }

  Result<std::vector<std::string>> List(Deadline deadline) override {
    v1::ListSandboxesRequest req;
    v1::ListSandboxesResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->ListSandboxes(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    std::vector<std::string> ids;
    for (const auto& s : resp.sandboxes()) ids.push_back(s.sandbox_id());
    return ids;
  }

  Result<bool> UpdateSecret(const std::string& sandbox_id, const PlainSecret& secret, Deadline deadline) override {
    v1::UpdateSecretRequest req;
    req.set_sandbox_id(sandbox_id);
    req.set_name(secret.name);
    req.set_value(secret.value);
    for (const auto& h : secret.allowed_hosts) req.add_allowed_hosts(h);
    auto out = Update(req, deadline);
    SecureWipe(*req.mutable_value());
    return out;
  }

  Result<bool> RemoveSecret(const std::string& sandbox_id, const std::string& name, Deadline deadline) override {
    v1::UpdateSecretRequest req;
    req.set_sandbox_id(sandbox_id);
    req.set_name(name);
    req.set_deleted(true);
    return Update(req, deadline);
  }

 private:
  Result<bool> Update(const v1::UpdateSecretRequest& req, Deadline deadline) {
    v1::UpdateSecretResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->UpdateSecret(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    return resp.applied();
  }

  std::unique_ptr<v1::Worker::StubInterface> stub_;
};

}  // namespace

std::shared_ptr<WorkerClient> GrpcWorkerConnector::Connect(const std::string& /*worker_id*/,
                                                           const std::string& address) {
  return std::make_shared<GrpcWorkerClient>(proto::MakeChannel(address, tls_, proto::GrpcRole::kWorker));
}

}  // namespace osb::controlplane
