// SandboxPlane: the control plane's half of running sandboxes — the worker
// pool, the sandbox service, its REST routes, the secret-change push, the
// gRPC server workers call (register, heartbeat, fetch secrets), and the
// sweeper that marks the sandboxes of silent workers lost. This is the one
// place that chooses how the control plane talks to workers: the gRPC
// WorkerClient by default, or the connector given in the options (tests).
//
// Attach() wires it into a ControlPlane before that starts; Stop() must run
// before the ControlPlane's store closes (RunControlPlane's on_stopped).
#pragma once

#include <grpcpp/server.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "api/control_plane.h"
#include "common/result.h"
#include "controlplane/command_streams.h"
#include "controlplane/sandbox_files.h"
#include "controlplane/long_calls.h"
#include "controlplane/sandboxes.h"
#include "controlplane/template_fetch.h"
#include "controlplane/templates.h"
#include "controlplane/worker_callbacks.h"
#include "controlplane/worker_client.h"
#include "controlplane/worker_pool.h"
#include "proto/tls_credentials.h"

namespace osb::api {

struct SandboxPlaneOptions {
  std::string grpc_listen = "127.0.0.1:8081";  // where workers call in
  std::optional<proto::GrpcTlsMaterial> tls;   // mutual TLS both ways
  controlplane::SandboxLimits limits;          // per-org caps, exec executor, refresh deadline
  std::chrono::seconds stale_after{20};        // no heartbeat for this long: the worker is lost
  // Not owned; when set, workers are reached through it instead of gRPC.
  controlplane::WorkerConnector* connector = nullptr;
  // Image templates (POST /api/templates): where tarballs are kept
  // (<data-dir>/templates) and the upload limit (--max-template-bytes).
  // An empty dir leaves the template routes out.
  controlplane::TemplateOptions templates;
};

class SandboxPlane {
 public:
  static Result<std::unique_ptr<SandboxPlane>> Attach(ControlPlane& cp, const SandboxPlaneOptions& options);
  ~SandboxPlane();
  void Stop();
  int grpc_port() const { return grpc_port_; }
  controlplane::WorkerPool& workers() { return *workers_; }
  controlplane::SandboxService& sandboxes() { return *sandboxes_; }
  controlplane::TemplateService* templates() { return templates_.get(); }

 private:
  SandboxPlane() = default;
  void Sweep(std::chrono::milliseconds every);

  std::unique_ptr<controlplane::WorkerConnector> own_connector_;
  std::unique_ptr<controlplane::WorkerPool> workers_;
  std::unique_ptr<controlplane::SandboxService> sandboxes_;
  std::unique_ptr<controlplane::CommandService> commands_;  // streams, background commands, terminals
  std::unique_ptr<controlplane::SandboxFiles> files_;
  std::unique_ptr<controlplane::OAuthTokenService> oauth_;  // before callbacks_: outlives it
  std::unique_ptr<controlplane::WorkerCallbacks> callbacks_;
  std::unique_ptr<controlplane::TemplateService> templates_;
  std::unique_ptr<controlplane::LongCalls> template_calls_;  // imports, off the REST handler threads
  std::unique_ptr<controlplane::TemplateFetchService> template_fetch_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  std::mutex sweep_mu_;
  std::condition_variable sweep_cv_;
  bool stopping_ = false;
  std::thread sweeper_;
};

}  // namespace osb::api
