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

// ---- oauth2-refresh coordination ----

namespace {
grpc::Status NoOAuth() { return {grpc::StatusCode::UNIMPLEMENTED, "oauth2-refresh coordination is not configured"}; }
int64_t UnixMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
}  // namespace

grpc::Status WorkerCallbacks::AcquireOAuthToken(grpc::ServerContext* ctx, const v1::AcquireOAuthTokenRequest* req,
                                                v1::AcquireOAuthTokenResponse* out) {
  if (auto st = CheckIdentity(ctx, req->worker_id()); !st.ok()) return st;
  if (oauth_ == nullptr) return NoOAuth();
  auto grant = oauth_->Acquire(req->worker_id(), req->sandbox_id(), req->name());
  if (!grant) return proto::ToGrpcStatus(grant.error());
  switch (grant->kind) {
    case OAuthTokenService::Grant::Kind::kToken:
      out->mutable_token()->set_access_token(grant->access_token);
      out->mutable_token()->set_expires_at_unix_ms(UnixMs(grant->expires_at));
      break;
    case OAuthTokenService::Grant::Kind::kLease:
      out->mutable_lease()->set_generation(grant->generation);
      out->mutable_lease()->set_refresh_token(grant->refresh_token);
      out->mutable_lease()->set_lease_until_unix_ms(UnixMs(grant->lease_until));
      break;
    case OAuthTokenService::Grant::Kind::kWait:
      out->set_retry_after_ms(static_cast<int32_t>(grant->retry_after.count()));
      break;
  }
  return grpc::Status::OK;
}

grpc::Status WorkerCallbacks::CompleteOAuthRefresh(grpc::ServerContext* ctx, const v1::CompleteOAuthRefreshRequest* req,
                                                   v1::CompleteOAuthRefreshResponse* out) {
  if (auto st = CheckIdentity(ctx, req->worker_id()); !st.ok()) return st;
  if (oauth_ == nullptr) return NoOAuth();
  auto stored = oauth_->Complete(req->worker_id(), req->sandbox_id(), req->name(), req->generation(),
                                 req->access_token(), req->expires_in_sec(), req->refresh_token());
  if (!stored) return proto::ToGrpcStatus(stored.error());
  out->set_stored(*stored);
  return grpc::Status::OK;
}

grpc::Status WorkerCallbacks::FailOAuthRefresh(grpc::ServerContext* ctx, const v1::FailOAuthRefreshRequest* req,
                                               v1::FailOAuthRefreshResponse*) {
  if (auto st = CheckIdentity(ctx, req->worker_id()); !st.ok()) return st;
  if (oauth_ == nullptr) return NoOAuth();
  if (auto s = oauth_->Fail(req->worker_id(), req->sandbox_id(), req->name(), req->generation()); !s) {
    return proto::ToGrpcStatus(s.error());
  }
  return grpc::Status::OK;
}

}  // namespace osb::controlplane
