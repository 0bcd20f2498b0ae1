// WorkerPool: the control plane's view of its workers — registration,
// heartbeats, health, placement, and one WorkerClient per worker (made by the
// WorkerConnector it is given; see controlplane/worker_client.h).
//
// Liveness lives in the store, not in this process: Register and Heartbeat
// write the worker's row, and a worker is healthy when its last heartbeat (as
// stored, whichever replica received it) is younger than `stale_after`. So N
// control-plane replicas on one PostgreSQL all schedule onto every worker.
// Load = sandboxes the store records as running or being created on it;
// capacity is the worker's own figures (sandboxes, CPUs, memory).
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "controlplane/worker_client.h"
#include "store/store.h"

namespace osb::controlplane {

using Clock = std::function<std::chrono::system_clock::time_point()>;

struct WorkerPoolOptions {
  std::chrono::seconds stale_after{20};
  Clock now;  // default: the system clock (tests move a fake one)
};

// What a worker offers besides its sandbox count; 0 = not limited.
struct WorkerResources {
  int cpu_count = 0;
  int memory_mb = 0;
};

class WorkerPool {
 public:
  WorkerPool(store::Store& store, WorkerConnector& connector, WorkerPoolOptions options = {});

  Status Register(const std::string& worker_id, const std::string& address, int capacity);
  Status Register(const std::string& worker_id, const std::string& address, int capacity,
                  WorkerResources resources);
  // kNotFound when the worker is unknown (it must register again).
  Status Heartbeat(const std::string& worker_id);

  struct Placement {
    std::string worker_id;
    std::shared_ptr<WorkerClient> client;
  };
  // Reserves `sandbox` (status "creating", worker_id filled in here) on the
  // healthy worker with the most free room, trying the next one when a
  // concurrent reservation filled it first (store::Store::ReserveSandbox
  // checks capacity in the insert's transaction). kUnavailable (HTTP 503)
  // when no healthy worker has room; kResourceExhausted for an org limit.
  Result<Placement> Place(store::SandboxRow sandbox, const store::PlacementLimits& org_limits);
  // The same on one given worker only (a checkpoint's): kUnavailable naming
  // it when it is stale or full.
  Result<Placement> PlaceOn(store::SandboxRow sandbox, const std::string& worker_id,
                            const store::PlacementLimits& org_limits);
  // The client for a known worker (healthy or not); kUnavailable if unknown.
  Result<std::shared_ptr<WorkerClient>> ClientFor(const std::string& worker_id);
  // Whether some healthy worker has room for one more sandbox (readiness).
  Result<bool> CanTakeSandbox();

  std::chrono::system_clock::time_point Now() const { return now_(); }
  // Heartbeats older than this (RFC 3339) mean the worker is lost.
  std::string StaleBefore() const;
  // OK when a healthy worker has free capacity (readiness); else the reason.
  Status Ready();

 private:
  std::shared_ptr<WorkerClient> ClientLocked(const std::string& worker_id, const std::string& address);
  Result<std::vector<store::WorkerRow>> HealthyWorkers();

  store::Store& store_;
  WorkerConnector& connector_;
  const std::chrono::seconds stale_after_;
  const Clock now_;
  std::mutex mu_;
  struct Channel {
    std::string address;
    std::shared_ptr<WorkerClient> client;
  };
  std::map<std::string, Channel> channels_;  // connections only; liveness is in the store
};

}  // namespace osb::controlplane
