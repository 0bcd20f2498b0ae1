// The ControlPlane gRPC service (proto/worker.proto) that workers call:
// registration, heartbeats (which also reconcile sandbox status), and the
// secrets a restarted worker needs for the sandboxes it still runs.
//
// Trust: under mutual TLS every caller holds a worker certificate (role
// OU=osb-worker) from the deployment's CA, and its worker id must be that
// certificate's common name (PERMISSION_DENIED otherwise), so a worker can
// fetch only the secrets of sandboxes recorded as running on itself. An
// empty worker id is INVALID_ARGUMENT on every call. Over plaintext
// (--insecure-grpc) every registration logs a loud warning.
#pragma once

#include "controlplane/oauth_tokens.h"
#include "controlplane/sandboxes.h"
#include "controlplane/worker_pool.h"
#include "proto/worker.grpc.pb.h"

namespace osb::controlplane {

class WorkerCallbacks final : public v1::ControlPlane::Service {
 public:
  WorkerCallbacks(WorkerPool& workers, SandboxService& sandboxes) : workers_(workers), sandboxes_(sandboxes) {}

  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest*,
                              v1::RegisterWorkerResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*, v1::HeartbeatResponse*) override;
  grpc::Status FetchSandboxSecrets(grpc::ServerContext*, const v1::FetchSandboxSecretsRequest*,
                                   v1::FetchSandboxSecretsResponse*) override;
  // oauth2-refresh coordination (controlplane/oauth_tokens.h); without
  // SetOAuth they answer UNIMPLEMENTED.
  void SetOAuth(OAuthTokenService* oauth) { oauth_ = oauth; }
  grpc::Status AcquireOAuthToken(grpc::ServerContext*, const v1::AcquireOAuthTokenRequest*,
                                 v1::AcquireOAuthTokenResponse*) override;
  grpc::Status CompleteOAuthRefresh(grpc::ServerContext*, const v1::CompleteOAuthRefreshRequest*,
                                    v1::CompleteOAuthRefreshResponse*) override;
  grpc::Status FailOAuthRefresh(grpc::ServerContext*, const v1::FailOAuthRefreshRequest*,
                                v1::FailOAuthRefreshResponse*) override;

 private:
  WorkerPool& workers_;
  SandboxService& sandboxes_;
  OAuthTokenService* oauth_ = nullptr;
};

}  // namespace osb::controlplane
