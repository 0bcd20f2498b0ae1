#include "controlplane/worker_callbacks.h"

#include "proto/status_mapping.h"

namespace osb::controlplane {

grpc::Status WorkerCallbacks::RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest* req,
                                             v1::RegisterWorkerResponse*) {
  if (auto s = workers_.Register(req->worker_id(), req->address(), req->capacity()); !s) {
    return proto::ToGrpcStatus(s.error());
  }
  return grpc::Status::OK;
}

grpc::Status WorkerCallbacks::Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* req,
                                        v1::HeartbeatResponse*) {
  if (auto s = workers_.Heartbeat(req->worker_id()); !s) return proto::ToGrpcStatus(s.error());
  sandboxes_.ReconcileWorker(req->worker_id(), {req->sandbox_ids().begin(), req->sandbox_ids().end()});
  return grpc::Status::OK;
}

grpc::Status WorkerCallbacks::FetchSandboxSecrets(grpc::ServerContext*, const v1::FetchSandboxSecretsRequest* req,
                                                  v1::FetchSandboxSecretsResponse* out) {
  auto secrets =
      sandboxes_.SecretsForWorker(req->worker_id(), {req->sandbox_ids().begin(), req->sandbox_ids().end()});
  if (!secrets) return proto::ToGrpcStatus(secrets.error());
  for (auto& s : *secrets) *out->add_sandboxes() = std::move(s);
  return grpc::Status::OK;
}

}  // namespace osb::controlplane
