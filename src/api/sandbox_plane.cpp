#include "api/sandbox_plane.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "api/sandbox_routes.h"

namespace osb::api {

Result<std::unique_ptr<SandboxPlane>> SandboxPlane::Attach(ControlPlane& cp, const SandboxPlaneOptions& options) {
  if (options.tls) {
    if (auto s = proto::CheckOwnRole(*options.tls, proto::GrpcRole::kControlPlane); !s) return s.error();
  }
  std::unique_ptr<SandboxPlane> plane(new SandboxPlane());
  plane->workers_ = std::make_unique<controlplane::WorkerPool>(cp.store(), options.tls);
  plane->sandboxes_ = std::make_unique<controlplane::SandboxService>(cp.store(), cp.resolver(), *plane->workers_);
  plane->callbacks_ = std::make_unique<controlplane::WorkerCallbacks>(*plane->workers_, *plane->sandboxes_);

  if (!options.tls) {
    spdlog::warn("INSECURE: control plane gRPC is PLAINTEXT (--insecure-grpc): any local process can register as "
                 "a worker and fetch sandbox secrets; set OPENSANDBOX_GRPC_TLS_CA, _CERT and _KEY for mutual TLS");
  }
  grpc::ServerBuilder builder;
  proto::AddGrpcListener(builder, options.grpc_listen, options.tls, proto::GrpcRole::kWorker, &plane->grpc_port_);
  builder.RegisterService(plane->callbacks_.get());
  plane->server_ = builder.BuildAndStart();
  if (!plane->server_ || plane->grpc_port_ == 0) {
    return MakeError(ErrorCode::kUnavailable, "--grpc-listen: cannot listen on " + options.grpc_listen +
                                                  " (is another process using that port?)");
  }
  RegisterSandboxRoutes(cp.router(), *plane->sandboxes_);
  controlplane::WorkerPool* workers = plane->workers_.get();
  cp.SetReadinessCheck([workers] { return workers->Ready(); });
  controlplane::SandboxService* sandboxes = plane->sandboxes_.get();
  cp.secrets().SetListener([sandboxes](const controlplane::SecretChange& c) { sandboxes->OnSecretChange(c); });
  cp.projects().SetBeforeDelete([sandboxes](const std::string& org_id, const std::string& project_id) {
    sandboxes->EndProjectSandboxes(org_id, project_id);
  });
  cp.projects().SetGroupsChanged([sandboxes](const std::string& org_id, const std::string& project_id,
                                             const std::vector<std::string>& group_ids) {
    sandboxes->OnProjectGroupsChanged(org_id, project_id, group_ids);
  });
  spdlog::info("control plane gRPC (for workers) on port {}", plane->grpc_port_);
  return plane;
}

void SandboxPlane::Stop() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
  }
}

SandboxPlane::~SandboxPlane() { Stop(); }

}  // namespace osb::api
