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
#include <set>
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
    if (!spec.from_checkpoint.empty() && !checkpoints_.count(spec.from_checkpoint))
      return MakeError(ErrorCode::kNotFound, "checkpoint " + spec.from_checkpoint + " not on this worker");
    auto& sb = sandboxes_[spec.id];
    sb.clear();
    for (const auto& s : spec.secrets) sb[s.name] = s.value;
    restored_from_[spec.id] = spec.from_checkpoint;
    envs_[spec.id] = spec.envs;
    if (real_clock_) {
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count() / 1000 * 1000;
      return controlplane::StartedSandbox{now, now + int64_t{spec.timeout_sec} * 1000};
    }
    return controlplane::StartedSandbox{1'700'000'000'000, 1'700'000'300'000};
  }
  // Checkpoints (issue 14): the fake keeps their ids.
  Result<controlplane::CheckpointSaved> Checkpoint(const std::string& id, const std::string& checkpoint_id,
                                                   controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st.error();
    std::lock_guard lock(mu_);
    if (!sandboxes_.count(id)) return MakeError(ErrorCode::kNotFound, "no such sandbox");
    checkpoints_.insert(checkpoint_id);
    return controlplane::CheckpointSaved{4096, 3};
  }
  Status DeleteCheckpoint(const std::string& checkpoint_id, controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st;
    std::lock_guard lock(mu_);
    if (!checkpoints_.erase(checkpoint_id)) return MakeError(ErrorCode::kNotFound, "no such checkpoint");
    return {};
  }
  Result<controlplane::StartedSandbox> SetTimeout(const std::string& id, int64_t end_at_unix_ms,
                                                  controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st.error();
    std::lock_guard lock(mu_);
    if (!sandboxes_.count(id)) return MakeError(ErrorCode::kNotFound, "no such sandbox");
    ends_[id] = end_at_unix_ms;
    return controlplane::StartedSandbox{end_at_unix_ms - 1000, end_at_unix_ms};
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
  void UseRealClock() { real_clock_ = true; }
  bool HasCheckpoint(const std::string& checkpoint_id) {
    std::lock_guard lock(mu_);
    return checkpoints_.count(checkpoint_id) > 0;
  }
  std::string RestoredFrom(const std::string& sandbox_id) {
    std::lock_guard lock(mu_);
    return restored_from_.count(sandbox_id) ? restored_from_[sandbox_id] : "<none>";
  }
  std::map<std::string, std::string> EnvsOf(const std::string& sandbox_id) {
    std::lock_guard lock(mu_);
    return envs_[sandbox_id];
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
  int execs_running_ = 0;
  int updates_ = 0;
  bool released_ = false;
  std::atomic<bool> real_clock_{false};
  std::set<std::string> checkpoints_;
  std::map<std::string, std::string> restored_from_;
  std::map<std::string, std::map<std::string, std::string>> envs_;
  std::map<std::string, int64_t> ends_;
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
