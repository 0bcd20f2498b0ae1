// The ControlPlaneTemplates gRPC service (proto/worker.proto): a worker
// streams the tarball of an image it was asked to run and does not have.
//
// Trust: the same identity rule as WorkerCallbacks (under mutual TLS the
// caller holds a worker certificate and worker_id is its common name), and
// the digest must be one that a sandbox now "creating" on that worker
// resolved to through its org's template (TemplateService::TarballForWorker):
// a worker cannot pull another org's image it was not asked to run.
// PERMISSION_DENIED otherwise; NOT_FOUND for an unknown digest.
#pragma once

#include "controlplane/templates.h"
#include "proto/worker.grpc.pb.h"

namespace osb::controlplane {

class TemplateFetchService final : public v1::ControlPlaneTemplates::Service {
 public:
  explicit TemplateFetchService(TemplateService& templates) : templates_(templates) {}
  grpc::Status FetchTemplate(grpc::ServerContext*, const v1::FetchTemplateRequest*,
                             grpc::ServerWriter<v1::TemplateChunk>*) override;

 private:
  TemplateService& templates_;
};

}  // namespace osb::controlplane
