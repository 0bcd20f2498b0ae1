#include "controlplane/worker_callbacks.h"

#include <spdlog/spdlog.h>

#include "controlplane/secret_proto.h"
#include "proto/status_mapping.h"
#include "proto/tls_credentials.h"

namespace osb::controlplane {

namespace {

// Every call names its worker, and an empty id matches nothing. Under
// mutual TLS the caller is the worker named by its certificate (whose role
// the TLS layer already checked: only worker certificates get here), so a
// worker cannot register, heartbeat or fetch secrets as another one.
grpc::Status CheckIdentity(const grpc::ServerContext* ctx, const std::string& worker_id) {
  if (worker_id.empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "worker_id: required"};
  const auto cn = proto::PeerCommonName(*ctx);
  if (!cn) return grpc::Status::OK;  // plaintext (--insecure-grpc): nothing to check against
  if (proto::PeerRole(*ctx) != proto::GrpcRole::kWorker) {
    return {grpc::StatusCode::PERMISSION_DENIED, "only worker certificates may call the control plane"};
  }
  if (*cn != worker_id) {
    return {grpc::StatusCode::PERMISSION_DENIED,
            "worker_id must be the common name of the worker's certificate (" + *cn + ")"};
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status WorkerCallbacks::RegisterWorker(grpc::ServerContext* ctx, const v1::RegisterWorkerRequest* req,
                                             v1::RegisterWorkerResponse*) {
  if (auto st = CheckIdentity(ctx, req->worker_id()); !st.ok()) return st;
  if (!proto::PeerCommonName(*ctx)) {
    spdlog::warn("INSECURE: worker {} registered over PLAINTEXT gRPC (--insecure-grpc): anyone who can reach "
                 "this port can register as a worker and receive sandbox secrets",
                 req->worker_id());
  }
  if (auto s = workers_.Register(req->worker_id(), req->address(), req->capacity(),
                                 WorkerResources{req->cpu_count(), req->memory_mb()});
      !s) {
    return proto::ToGrpcStatus(s.error());
  }
  return grpc::Status::OK;
}

grpc::Status WorkerCallbacks::Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                                        v1::HeartbeatResponse*) {
  if (auto st = CheckIdentity(ctx, req->worker_id()); !st.ok()) return st;
  if (auto s = workers_.Heartbeat(req->worker_id()); !s) return proto::ToGrpcStatus(s.error());
  sandboxes_.ReconcileWorker(req->worker_id(), {req->sandbox_ids().begin(), req->sandbox_ids().end()});
  return grpc::Status::OK;
}

grpc::Status WorkerCallbacks::FetchSandboxSecrets(grpc::ServerContext* ctx, const v1::FetchSandboxSecretsRequest* req,
                                                  v1::FetchSandboxSecretsResponse* out) {
  if (auto st = CheckIdentity(ctx, req->worker_id()); !st.ok()) return st;
  auto secrets =
      sandboxes_.SecretsForWorker(req->worker_id(), {req->sandbox_ids().begin(), req->sandbox_ids().end()});
  if (!secrets) return proto::ToGrpcStatus(secrets.error());
  for (const auto& entry : *secrets) {
    auto* sb = out->add_sandboxes();
    sb->set_sandbox_id(entry.sandbox_id);
    for (const auto& h : entry.egress_allowlist) sb->add_egress_allowlist(h);
    for (const auto& secret : entry.secrets) {
      auto* spec = sb->add_secrets();
      spec->set_name(secret.name);
      spec->set_value(secret.value);
      for (const auto& h : secret.allowed_hosts) spec->add_allowed_hosts(h);
      FillSecretKindFields(secret, spec);
    }
  }
  return grpc::Status::OK;
}

}  // namespace osb::controlplane
