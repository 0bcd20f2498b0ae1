#include "controlplane/worker_pool.h"

#include <spdlog/spdlog.h>

namespace osb::controlplane {

WorkerPool::WorkerPool(store::Store& store, std::optional<proto::GrpcTlsMaterial> tls,
                       std::chrono::seconds stale_after)
    : store_(store), tls_(std::move(tls)), stale_after_(stale_after) {}

Status WorkerPool::Register(const std::string& worker_id, const std::string& address, int capacity) {
  if (worker_id.empty() || worker_id.size() > 128) {
    return MakeError(ErrorCode::kInvalidArgument, "worker_id: must be 1-128 characters");
  }
  if (address.empty()) return MakeError(ErrorCode::kInvalidArgument, "address: required");
  if (capacity < 1) return MakeError(ErrorCode::kInvalidArgument, "capacity: must be at least 1");
  if (auto s = store_.UpsertWorker({worker_id, address, capacity, store::NowRfc3339()}); !s) return s;
  std::lock_guard lock(mu_);
  auto it = channels_.find(worker_id);
  if (it != channels_.end() && it->second.address != address) channels_.erase(it);
  last_seen_[worker_id] = std::chrono::steady_clock::now();
  spdlog::info("worker {} registered at {} (capacity {})", worker_id, address, capacity);
  return {};
}

Status WorkerPool::Heartbeat(const std::string& worker_id) {
  {
    std::lock_guard lock(mu_);
    if (!last_seen_.count(worker_id)) {
      return MakeError(ErrorCode::kNotFound, "worker " + worker_id + " is not registered");
    }
    last_seen_[worker_id] = std::chrono::steady_clock::now();
  }
  return store_.TouchWorker(worker_id, store::NowRfc3339());
}

v1::Worker::StubInterface* WorkerPool::StubLocked(const std::string& worker_id, const std::string& address) {
  auto& ch = channels_[worker_id];
  if (!ch.stub || ch.address != address) {
    ch.address = address;
    ch.stub = v1::Worker::NewStub(proto::MakeChannel(address, tls_, proto::GrpcRole::kWorker));
  }
  return ch.stub.get();
}

Result<WorkerPool::Choice> WorkerPool::PickLeastLoaded() {
  auto workers = store_.ListWorkers();
  if (!workers) return workers.error();
  auto running = store_.ListRunningSandboxes(std::nullopt, std::nullopt);
  if (!running) return running.error();
  std::map<std::string, int> load;
  for (const auto& sb : *running) ++load[sb.worker_id];

  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  const store::WorkerRow* best = nullptr;
  int best_free = 0;
  for (const auto& w : *workers) {
    auto seen = last_seen_.find(w.id);
    if (seen == last_seen_.end() || now - seen->second > stale_after_) continue;
    const int free = w.capacity - load[w.id];
    if (free > best_free) {
      best = &w;
      best_free = free;
    }
  }
  if (best == nullptr) {
    return MakeError(ErrorCode::kUnavailable, "no healthy worker with free capacity");
  }
  return Choice{best->id, StubLocked(best->id, best->address)};
}

Status WorkerPool::Ready() {
  auto choice = PickLeastLoaded();
  if (!choice) return choice.error();
  return {};
}

Result<v1::Worker::StubInterface*> WorkerPool::StubFor(const std::string& worker_id) {
  auto workers = store_.ListWorkers();
  if (!workers) return workers.error();
  std::lock_guard lock(mu_);
  for (const auto& w : *workers) {
    if (w.id == worker_id) return StubLocked(w.id, w.address);
  }
  return MakeError(ErrorCode::kUnavailable, "worker " + worker_id + " is not registered");
}

}  // namespace osb::controlplane
