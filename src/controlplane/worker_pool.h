// WorkerPool: the control plane's view of its workers — registration,
// heartbeats, health, least-loaded choice, and one gRPC channel per worker
// (mutual TLS when configured; see proto/tls_credentials.h).
//
// A worker is healthy when its last heartbeat is younger than `stale_after`.
// Load = sandboxes the store records as running on it; capacity is the
// worker's own figure. Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/result.h"
#include "proto/tls_credentials.h"
#include "proto/worker.grpc.pb.h"
#include "store/store.h"

namespace osb::controlplane {

class WorkerPool {
 public:
  WorkerPool(store::Store& store, std::optional<proto::GrpcTlsMaterial> tls,
             std::chrono::seconds stale_after = std::chrono::seconds(20));

  Status Register(const std::string& worker_id, const std::string& address, int capacity);
  // kNotFound when the worker is unknown (it must register again).
  Status Heartbeat(const std::string& worker_id);

  struct Choice {
    std::string worker_id;
    v1::Worker::StubInterface* stub;
  };
  // The healthy worker with the most free capacity; kUnavailable (HTTP 503)
  // when none is healthy or all are full.
  Result<Choice> PickLeastLoaded();
  // OK when a healthy worker has free capacity (readiness); else the reason.
  Status Ready();
  // The stub for a known worker (healthy or not); kUnavailable if unknown.
  Result<v1::Worker::StubInterface*> StubFor(const std::string& worker_id);

 private:
  v1::Worker::StubInterface* StubLocked(const std::string& worker_id, const std::string& address);

  store::Store& store_;
  std::optional<proto::GrpcTlsMaterial> tls_;
  std::chrono::seconds stale_after_;
  std::mutex mu_;
  struct Channel {
    std::string address;
    std::unique_ptr<v1::Worker::StubInterface> stub;
  };
  std::map<std::string, Channel> channels_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_seen_;  // this process's view
};

}  // namespace osb::controlplane
