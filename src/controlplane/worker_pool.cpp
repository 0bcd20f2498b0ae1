#include "controlplane/worker_pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace osb::controlplane {

namespace {

// Free room as a fraction of what the worker offers, the scarcest resource
// deciding: a worker with 9/10 slots free but 100 MiB of 4 GiB left is full.
double FreeShare(const store::WorkerRow& w) {
  double share = w.capacity > 0 ? double(w.capacity - w.sandboxes) / w.capacity : 0.0;
  if (w.cpu_count > 0) share = std::min(share, double(w.cpu_count - w.cpu_used) / w.cpu_count);
  if (w.memory_mb > 0) share = std::min(share, double(w.memory_mb - w.memory_used_mb) / w.memory_mb);
  return share;
}

}  // namespace

WorkerPool::WorkerPool(store::Store& store, WorkerConnector& connector, WorkerPoolOptions options)
    : store_(store),
      connector_(connector),
      stale_after_(options.stale_after),
      now_(options.now ? std::move(options.now) : Clock([] { return std::chrono::system_clock::now(); })) {}

Status WorkerPool::Register(const std::string& worker_id, const std::string& address, int capacity) {
  return Register(worker_id, address, capacity, WorkerResources{});
}

Status WorkerPool::Register(const std::string& worker_id, const std::string& address, int capacity,
                            WorkerResources resources) {
  if (worker_id.empty() || worker_id.size() > 128) {
    return MakeError(ErrorCode::kInvalidArgument, "worker_id: must be 1-128 characters");
  }
  if (address.empty()) return MakeError(ErrorCode::kInvalidArgument, "address: required");
  if (capacity < 1) return MakeError(ErrorCode::kInvalidArgument, "capacity: must be at least 1");
  if (resources.cpu_count < 0) return MakeError(ErrorCode::kInvalidArgument, "cpu_count: must not be negative");
  if (resources.memory_mb < 0) return MakeError(ErrorCode::kInvalidArgument, "memory_mb: must not be negative");
  const std::string now = store::Rfc3339Ms(now_());
  store::WorkerRow row{worker_id, address, capacity, now, resources.cpu_count, resources.memory_mb, now};
  if (auto s = store_.UpsertWorker(row); !s) return s;
  {
    std::lock_guard lock(mu_);
    auto it = channels_.find(worker_id);
    if (it != channels_.end() && it->second.address != address) channels_.erase(it);
  }
  spdlog::info("worker {} registered at {} (capacity {}, {} CPUs, {} MiB)", worker_id, address, capacity,
               resources.cpu_count, resources.memory_mb);
  return {};
}

Status WorkerPool::Heartbeat(const std::string& worker_id) {
  if (worker_id.empty()) return MakeError(ErrorCode::kNotFound, "worker is not registered");
  Status st = store_.TouchWorker(worker_id, store::Rfc3339Ms(now_()));
  if (!st && st.error().code == ErrorCode::kNotFound) {
    return MakeError(ErrorCode::kNotFound, "worker " + worker_id + " is not registered");
  }
  return st;
}

std::string WorkerPool::StaleBefore() const { return store::Rfc3339Ms(now_() - stale_after_); }

std::shared_ptr<WorkerClient> WorkerPool::ClientLocked(const std::string& worker_id, const std::string& address) {
  auto& ch = channels_[worker_id];
  if (!ch.client || ch.address != address) {
    ch.address = address;
    ch.client = connector_.Connect(worker_id, address);
  }
  return ch.client;
}

Result<std::vector<store::WorkerRow>> WorkerPool::HealthyWorkers() {
  auto workers = store_.ListWorkers();
  if (!workers) return workers.error();
  const std::string fresh_since = StaleBefore();
  std::vector<store::WorkerRow> out;
  for (auto& w : *workers) {
    if (w.last_heartbeat >= fresh_since && FreeShare(w) > 0) out.push_back(std::move(w));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const store::WorkerRow& a, const store::WorkerRow& b) { return FreeShare(a) > FreeShare(b); });
  return out;
}

Result<WorkerPool::Placement> WorkerPool::Place(store::SandboxRow sandbox, const store::PlacementLimits& org_limits) {
  auto workers = HealthyWorkers();
  if (!workers) return workers.error();
  store::PlacementLimits limits = org_limits;
  limits.fresh_since = StaleBefore();
  for (const auto& w : *workers) {
    sandbox.worker_id = w.id;
    Status st = store_.ReserveSandbox(sandbox, limits);
    if (st) {
      std::lock_guard lock(mu_);
      return Placement{w.id, ClientLocked(w.id, w.address)};
    }
    if (st.error().code != ErrorCode::kUnavailable) return st.error();
    spdlog::debug("worker {} cannot take sandbox {}: {}", w.id, sandbox.id, st.error().message);
  }
  return MakeError(ErrorCode::kUnavailable, "no healthy worker with free capacity");
}

Result<WorkerPool::Placement> WorkerPool::PlaceOn(store::SandboxRow sandbox, const std::string& worker_id,
                                                  const store::PlacementLimits& org_limits) {
  store::PlacementLimits limits = org_limits;
  limits.fresh_since = StaleBefore();
  sandbox.worker_id = worker_id;
  Status st = store_.ReserveSandbox(sandbox, limits);
  if (!st) {
    if (st.error().code != ErrorCode::kUnavailable) return st.error();
    return MakeError(ErrorCode::kUnavailable, "worker " + worker_id + " (which holds the checkpoint) cannot take it: " +
                                                  st.error().message);
  }
  auto client = ClientFor(worker_id);
  if (!client) return client.error();
  return Placement{worker_id, *client};
}

Result<bool> WorkerPool::CanTakeSandbox() {
  auto workers = HealthyWorkers();
  if (!workers) return workers.error();
  return !workers->empty();
}

Status WorkerPool::Ready() {
  auto can = CanTakeSandbox();
  if (!can) return can.error();
  if (!*can) return MakeError(ErrorCode::kUnavailable, "no healthy worker with free capacity");
  return {};
}

Result<std::shared_ptr<WorkerClient>> WorkerPool::ClientFor(const std::string& worker_id) {
  auto workers = store_.ListWorkers();
  if (!workers) return workers.error();
  std::lock_guard lock(mu_);
  for (const auto& w : *workers) {
    if (w.id == worker_id) return ClientLocked(w.id, w.address);
  }
  return MakeError(ErrorCode::kUnavailable, "worker " + worker_id + " is not registered");
}

}  // namespace osb::controlplane
