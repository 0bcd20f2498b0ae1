#include "api/sandbox_plane.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "api/exec_stream_routes.h"
#include "api/file_routes.h"
#include "api/sandbox_routes.h"
#include "api/template_routes.h"
#include "controlplane/grpc_worker_client.h"

namespace osb::api {

Result<std::unique_ptr<SandboxPlane>> SandboxPlane::Attach(ControlPlane& cp, const SandboxPlaneOptions& options) {
  if (options.tls) {
    if (auto s = proto::CheckOwnRole(*options.tls, proto::GrpcRole::kControlPlane); !s) return s.error();
  }
  std::unique_ptr<SandboxPlane> plane(new SandboxPlane());
  controlplane::WorkerConnector* connector = options.connector;
  if (connector == nullptr) {
    plane->own_connector_ = std::make_unique<controlplane::GrpcWorkerConnector>(options.tls);
    connector = plane->own_connector_.get();
  }
  controlplane::WorkerPoolOptions pool_options;
  pool_options.stale_after = options.stale_after;
  plane->workers_ = std::make_unique<controlplane::WorkerPool>(cp.store(), *connector, pool_options);
  plane->sandboxes_ = std::make_unique<controlplane::SandboxService>(cp.store(), cp.resolver(), *plane->workers_,
                                                                     options.limits);
  plane->callbacks_ = std::make_unique<controlplane::WorkerCallbacks>(*plane->workers_, *plane->sandboxes_);
  plane->oauth_ = std::make_unique<controlplane::OAuthTokenService>(cp.store(), cp.resolver(), cp.keyring());
  plane->callbacks_->SetOAuth(plane->oauth_.get());

  if (!options.tls) {
    spdlog::warn("INSECURE: control plane gRPC is PLAINTEXT (--insecure-grpc): any local process can register as "
                 "a worker and fetch sandbox secrets; set OPENSANDBOX_GRPC_TLS_CA, _CERT and _KEY for mutual TLS");
  }
  if (!options.templates.dir.empty()) {
    plane->templates_ = std::make_unique<controlplane::TemplateService>(cp.store(), options.templates);
    plane->template_calls_ = std::make_unique<controlplane::LongCalls>(controlplane::LongCallLimits{4, 2, 16});
    plane->template_fetch_ = std::make_unique<controlplane::TemplateFetchService>(*plane->templates_);
    plane->sandboxes_->SetTemplateDigests([t = plane->templates_.get()](const std::string& org_id,
                                                                          const std::string& name) {
      return t->DigestFor(org_id, name);
    });
  }
  grpc::ServerBuilder builder;
  proto::AddGrpcListener(builder, options.grpc_listen, options.tls, proto::GrpcRole::kWorker, &plane->grpc_port_);
  builder.RegisterService(plane->callbacks_.get());
  if (plane->template_fetch_) builder.RegisterService(plane->template_fetch_.get());
  plane->server_ = builder.BuildAndStart();
  if (!plane->server_ || plane->grpc_port_ == 0) {
    return MakeError(ErrorCode::kUnavailable, "--grpc-listen: cannot listen on " + options.grpc_listen +
                                                  " (is another process using that port?)");
  }
  RegisterSandboxRoutes(cp.router(), *plane->sandboxes_);
  RegisterCheckpointRoutes(cp.router(), *plane->sandboxes_);
  plane->commands_ = std::make_unique<controlplane::CommandService>(cp.store(), *plane->workers_);
  RegisterCommandRoutes(cp.router(), *plane->commands_);
  plane->files_ = std::make_unique<controlplane::SandboxFiles>(*plane->sandboxes_);
  RegisterFileRoutes(cp.router(), *plane->files_);
  if (plane->templates_) RegisterTemplateRoutes(cp.router(), *plane->templates_, *plane->template_calls_);
  controlplane::WorkerPool* workers = plane->workers_.get();
  cp.SetReadinessCheck([workers] { return workers->Ready(); });
  controlplane::SandboxService* sandboxes = plane->sandboxes_.get();
  cp.secrets().SetListener([sandboxes](const controlplane::SecretChange& c,
                                       std::shared_ptr<controlplane::RefreshTicket> ticket) {
    sandboxes->OnSecretChange(c, std::move(ticket));
  });
  cp.projects().SetBeforeDelete([sandboxes](const std::string& org_id, const std::string& project_id) {
    sandboxes->EndProjectSandboxes(org_id, project_id);
  });
  cp.projects().SetGroupsChanged([sandboxes](const std::string& org_id, const std::string& project_id,
                                             const std::vector<std::string>& group_ids) {
    sandboxes->OnProjectGroupsChanged(org_id, project_id, group_ids);
  });
  // Every replica sweeps; the store's conditional UPDATE marks each lost
  // sandbox once, whichever replica gets there first.
  const auto every = std::max<std::chrono::milliseconds>(std::chrono::seconds(1), options.stale_after / 4);
  plane->sweeper_ = std::thread([p = plane.get(), every] { p->Sweep(every); });
  spdlog::info("control plane gRPC (for workers) on port {}", plane->grpc_port_);
  return plane;
}

void SandboxPlane::Sweep(std::chrono::milliseconds every) {
  std::unique_lock lock(sweep_mu_);
  while (!sweep_cv_.wait_for(lock, every, [&] { return stopping_; })) {
    lock.unlock();
    auto lost = sandboxes_->SweepLost();
    if (!lost) spdlog::warn("lost-worker sweep failed: {}", lost.error().message);
    lock.lock();
  }
}

void SandboxPlane::Stop() {
  {
    std::lock_guard lock(sweep_mu_);
    stopping_ = true;
  }
  sweep_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
  }
}

SandboxPlane::~SandboxPlane() { Stop(); }

}  // namespace osb::api
