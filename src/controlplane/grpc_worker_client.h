// The gRPC implementation of WorkerClient (controlplane/worker_client.h):
// one channel per worker (mutual TLS when configured, see
// proto/tls_credentials.h), domain types mapped to and from worker.proto,
// gRPC status mapped back through proto/status_mapping.h. Secret values put
// into a request are wiped once the call returns.
#pragma once

#include <optional>

#include "controlplane/worker_client.h"
#include "proto/tls_credentials.h"

namespace osb::controlplane {

class GrpcWorkerConnector final : public WorkerConnector {
 public:
  explicit GrpcWorkerConnector(std::optional<proto::GrpcTlsMaterial> tls) : tls_(std::move(tls)) {}
  std::shared_ptr<WorkerClient> Connect(const std::string& worker_id, const std::string& address) override;

 private:
  std::optional<proto::GrpcTlsMaterial> tls_;
};

}  // namespace osb::controlplane
