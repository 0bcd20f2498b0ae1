// SandboxPlane: the control plane's half of running sandboxes — the worker
// pool, the sandbox service, its REST routes, the secret-change push, and
// the gRPC server workers call (register, heartbeat, fetch secrets).
//
// Attach() wires it into a ControlPlane before that starts; Stop() must run
// before the ControlPlane's store closes (RunControlPlane's on_stopped).
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <optional>
#include <string>

#include "api/control_plane.h"
#include "common/result.h"
#include "controlplane/sandboxes.h"
#include "controlplane/worker_callbacks.h"
#include "controlplane/worker_pool.h"
#include "proto/tls_credentials.h"

namespace osb::api {

struct SandboxPlaneOptions {
  std::string grpc_listen = "127.0.0.1:8081";  // where workers call in
  std::optional<proto::GrpcTlsMaterial> tls;   // mutual TLS both ways
};

class SandboxPlane {
 public:
  static Result<std::unique_ptr<SandboxPlane>> Attach(ControlPlane& cp, const SandboxPlaneOptions& options);
  ~SandboxPlane();
  void Stop();
  int grpc_port() const { return grpc_port_; }

 private:
  SandboxPlane() = default;
  std::unique_ptr<controlplane::WorkerPool> workers_;
  std::unique_ptr<controlplane::SandboxService> sandboxes_;
  std::unique_ptr<controlplane::WorkerCallbacks> callbacks_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
};

}  // namespace osb::api
