// In-memory workers behind the controlplane::WorkerClient seam: what a real
// worker would hold (running sandboxes, their current secret values) plus
// knobs for faults — an exec that blocks until released, a worker that
// cannot be reached, or one that hangs until the caller's deadline.
// Header-only; shared by tests/controlplane and tests/api.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "controlplane/worker_client.h"

namespace osb::testing {

class FakeWorker final : public controlplane::WorkerClient {
 public:
  enum class Mode { kOk, kUnreachable, kHang };

  explicit FakeWorker(std::string id) : id_(std::move(id)) {}

  Result<controlplane::StartedSandbox> Create(const controlplane::SandboxSpec& spec,
                                              controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st.error();
    std::lock_guard lock(mu_);
    auto& sb = sandboxes_[spec.id];
    for (const auto& s : spec.secrets) sb[s.name] = s.value;
    disk_mb_[spec.id] = spec.disk_mb;
    return controlplane::StartedSandbox{1'700'000'000'000, 1'700'000'300'000};
  }
  Status Destroy(const std::string& id, controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st;
    std::lock_guard lock(mu_);
    if (!sandboxes_.erase(id)) return MakeError(ErrorCode::kNotFound, "no such sandbox");
    cv_.notify_all();
    return {};
  }
  Result<controlplane::ExecOutcome> Exec(const std::string& id, const controlplane::ExecCommand& cmd,
                                         controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st.error();
    {
      std::unique_lock lock(mu_);
      if (!sandboxes_.count(id)) return MakeError(ErrorCode::kNotFound, "no such sandbox");
      ++execs_running_;
      cv_.notify_all();
      if (cmd.cmd == "sleep") cv_.wait_until(lock, deadline, [&] { return released_; });
      --execs_running_;
    }
    return controlplane::ExecOutcome{0, "ran " + cmd.cmd, "", false, false, false};
  }
  Result<std::vector<std::string>> List(controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st.error();
    return Running();
  }
  Result<bool> UpdateSecret(const std::string& id, const controlplane::PlainSecret& secret,
                            controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st.error();
    std::lock_guard lock(mu_);
    ++updates_;
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return MakeError(ErrorCode::kNotFound, "no such sandbox");
    it->second[secret.name] = secret.value;
    return true;
  }
  Result<bool> RemoveSecret(const std::string& id, const std::string& name, controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st.error();
    std::lock_guard lock(mu_);
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return MakeError(ErrorCode::kNotFound, "no such sandbox");
    return it->second.erase(name) > 0;
  }

  // ---- test side ----
  const std::string& id() const { return id_; }
  // The disk_mb a create asked for (-1: no such create).
  int DiskMb(const std::string& sandbox_id) {
    std::lock_guard lock(mu_);
    auto it = disk_mb_.find(sandbox_id);
    return it == disk_mb_.end() ? -1 : it->second;
  }
  void SetMode(Mode m) { mode_ = m; }
  std::vector<std::string> Running() {
    std::lock_guard lock(mu_);
    std::vector<std::string> ids;
    for (const auto& [id, _] : sandboxes_) ids.push_back(id);
    return ids;
  }
  std::string SecretIn(const std::string& sandbox_id, const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = sandboxes_.find(sandbox_id);
    if (it == sandboxes_.end() || !it->second.count(name)) return "<none>";
    return it->second.at(name);
  }
  // Waits (bounded) until `n` "sleep" execs are running at once.
  bool WaitForExecs(int n, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return execs_running_ >= n; });
  }
  // Waits (bounded) until the worker runs no sandbox.
  bool WaitForNoSandboxes(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return sandboxes_.empty(); });
  }
  int ExecsRunning() {
    std::lock_guard lock(mu_);
    return execs_running_;
  }
  void ReleaseExecs() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int Updates() {
    std::lock_guard lock(mu_);
    return updates_;
  }

 private:
  Status Fault(controlplane::Deadline deadline) {
    switch (mode_.load()) {
      case Mode::kOk: return {};
      case Mode::kUnreachable: return MakeError(ErrorCode::kUnavailable, "worker " + id_ + " unreachable");
      case Mode::kHang: {
        std::unique_lock lock(mu_);
        cv_.wait_until(lock, deadline, [&] { return released_; });
        return MakeError(ErrorCode::kUnavailable, "deadline exceeded");
      }
    }
    return {};
  }

  const std::string id_;
  std::atomic<Mode> mode_{Mode::kOk};
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::map<std::string, std::string>> sandboxes_;  // id -> secret name -> value
  std::map<std::string, int> disk_mb_;  // id -> SandboxSpec::disk_mb of its create
  int execs_running_ = 0;
  int updates_ = 0;
  bool released_ = false;
};

// Workers by id; every replica's WorkerPool connects to the same fakes, like
// real replicas dialling the same worker hosts.
class FakeWorkers final : public controlplane::WorkerConnector {
 public:
  std::shared_ptr<controlplane::WorkerClient> Connect(const std::string& worker_id, const std::string&) override {
    return Get(worker_id);
  }
  std::shared_ptr<FakeWorker> Get(const std::string& worker_id) {
    std::lock_guard lock(mu_);
    auto& w = workers_[worker_id];
    if (!w) w = std::make_shared<FakeWorker>(worker_id);
    return w;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<FakeWorker>> workers_;
};

}  // namespace osb::testing
