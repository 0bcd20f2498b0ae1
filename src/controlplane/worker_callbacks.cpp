#include "controlplane/worker_callbacks.h"

#include "proto/status_mapping.h"
#include "proto/tls_credentials.h"

namespace osb::controlplane {

namespace {

// Under mutual TLS the caller is the worker named by its certificate: a
// worker cannot register, heartbeat or fetch secrets as another one.
grpc::Status CheckIdentity(const grpc::ServerContext* ctx, const std::string& worker_id) {
  const auto cn = proto::PeerCommonName(*ctx);
  if (cn && *cn != worker_id) {
    return {grpc::StatusCode::PERMISSION_DENIED,
            "worker_id must be the common name of the worker's certificate (" + *cn + ")"};
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status WorkerCallbacks::RegisterWorker(grpc::ServerContext* ctx, const v1::RegisterWorkerRequest* req,
                                             v1::RegisterWorkerResponse*) {
  if (auto st = CheckIdentity(ctx, req->worker_id()); !st.ok()) return st;
  if (auto s = workers_.Register(req->worker_id(), req->address(), req->capacity()); !s) {
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
  for (auto& s : *secrets) *out->add_sandboxes() = std::move(s);
  return grpc::Status::OK;
}

}  // namespace osb::controlplane
