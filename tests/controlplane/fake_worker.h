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
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "controlplane/worker_client.h"

namespace osb::testing {

// A command stream the fake worker plays: "echo ARGS" prints them, "cat"
// echoes stdin until end-of-input, "exit N" exits N, "sleep" runs until
// signalled (exit 128+signal) or cancelled; attach replays "output of ID\n".
class FakeCommandStream final : public controlplane::CommandStream {
 public:
  using Event = controlplane::CommandEvent;
  FakeCommandStream(controlplane::CommandSpec spec, std::string id, bool attach) : spec_(std::move(spec)) {
    Event started;
    started.kind = Event::kStarted;
    started.info.id = id;
    started.info.cmd = spec_.cmd;
    started.info.status = "running";
    Push(started);
    if (attach) {
      Event dropped;
      dropped.kind = Event::kDropped;
      dropped.dropped = 7;
      Push(dropped);
      Out("output of " + id + "\n");
      Exit(0);
    } else if (spec_.cmd == "echo") {
      std::string line;
      for (const auto& a : spec_.args) line += (line.empty() ? "" : " ") + a;
      Out(line + "\n");
      Exit(0);
    } else if (spec_.cmd == "exit") {
      Exit(spec_.args.empty() ? 0 : std::stoi(spec_.args[0]));
    }
  }
  bool Read(Event* e) override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return cancelled_ || !events_.empty(); });
    if (events_.empty()) return false;
    *e = std::move(events_.front());
    events_.pop_front();
    return true;
  }
  bool WriteStdin(const std::string& data) override {
    if (spec_.cmd == "cat") Out(data);
    return true;
  }
  bool CloseStdin() override {
    if (spec_.cmd == "cat") Exit(0);
    return true;
  }
  bool Resize(int cols, int rows) override {
    Out("resized " + std::to_string(cols) + "x" + std::to_string(rows) + "\n");
    return true;
  }
  bool Signal(int signal) override {
    Exit(128 + signal);
    return true;
  }
  void WritesDone() override {}
  Status Finish() override {
    std::lock_guard lock(mu_);
    if (!exited_) return MakeError(ErrorCode::kUnavailable, "stream cancelled");
    return {};
  }
  void Cancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }

 private:
  void Push(Event e) {
    std::lock_guard lock(mu_);
    if (exited_) return;
    if (e.kind == Event::kExit) exited_ = true;
    events_.push_back(std::move(e));
    cv_.notify_all();
  }
  void Out(const std::string& data) {
    Event e;
    e.kind = Event::kStdout;
    e.data = data;
    Push(e);
  }
  void Exit(int code) {
    Event e;
    e.kind = Event::kExit;
    e.info.status = "exited";
    e.info.exit_code = code;
    Push(e);
  }

  controlplane::CommandSpec spec_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  bool exited_ = false;
  bool cancelled_ = false;
};

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
    disk_mb_[spec.id] = spec.disk_mb;
    // Like the worker: a digest pins the image, else the template name is
    // resolved against the images "imported" here (SetImage).
    template_digest_[spec.id] = spec.template_digest;
    if (spec.template_digest.empty() && images_.count(spec.template_id))
      resolved_digest_[spec.id] = images_[spec.template_id];
    else
      resolved_digest_[spec.id] = spec.template_digest;
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
    const std::string digest = resolved_digest_[id];
    return controlplane::CheckpointSaved{4096, 3, digest, digest.empty() ? 0 : disk_mb_[id]};
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
  // With SetAsyncExec(true), a "sleep" exec goes through ExecAsync: no
  // thread waits for it; ReleaseExecs() completes it from the releasing
  // thread. Other commands (and the default) take the blocking Exec.
  void SetAsyncExec(bool on) { async_exec_ = on; }
  bool ExecAsync(const std::string& id, const controlplane::ExecCommand& cmd, controlplane::Deadline,
                 std::function<void(Result<controlplane::ExecOutcome>)> done) override {
    if (!async_exec_ || cmd.cmd != "sleep" || mode_.load() != Mode::kOk) return false;
    std::lock_guard lock(mu_);
    if (!sandboxes_.count(id) || released_) return false;
    ++execs_running_;
    held_.push_back(std::move(done));
    cv_.notify_all();
    return true;
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

  Result<std::unique_ptr<controlplane::CommandStream>> OpenCommandStream(const std::string& id,
                                                                         const controlplane::CommandSpec* spec,
                                                                         const std::string& command_id) override {
    if (auto st = Fault(controlplane::Deadline::max()); !st) return st.error();
    std::lock_guard lock(mu_);
    if (!sandboxes_.count(id)) return MakeError(ErrorCode::kNotFound, "no such sandbox");
    if (!spec) {
      if (!commands_[id].count(command_id)) return MakeError(ErrorCode::kNotFound, "command not found");
      return std::unique_ptr<controlplane::CommandStream>(
          std::make_unique<FakeCommandStream>(controlplane::CommandSpec{}, command_id, true));
    }
    ++streams_opened_;
    return std::unique_ptr<controlplane::CommandStream>(
        std::make_unique<FakeCommandStream>(*spec, "cmd_stream" + std::to_string(streams_opened_), false));
  }
  Result<controlplane::CommandInfo> StartCommand(const std::string& id, const controlplane::CommandSpec& spec,
                                                 controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st.error();
    std::lock_guard lock(mu_);
    if (!sandboxes_.count(id)) return MakeError(ErrorCode::kNotFound, "no such sandbox");
    controlplane::CommandInfo c;
    c.id = "cmd_" + id + "_" + std::to_string(commands_[id].size() + 1);
    c.cmd = spec.cmd;
    c.args = spec.args;
    c.status = "running";
    c.detached = true;
    c.started_at_unix_ms = 1'700'000'000'000;
    commands_[id][c.id] = c;
    return c;
  }
  Result<std::vector<controlplane::CommandInfo>> ListCommands(const std::string& id,
                                                              controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st.error();
    std::lock_guard lock(mu_);
    std::vector<controlplane::CommandInfo> out;
    for (const auto& [cid, c] : commands_[id]) out.push_back(c);
    return out;
  }
  Result<controlplane::CommandInfo> KillCommand(const std::string& id, const std::string& command_id, int signal,
                                                controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st.error();
    std::lock_guard lock(mu_);
    auto it = commands_[id].find(command_id);
    if (it == commands_[id].end()) return MakeError(ErrorCode::kNotFound, "command not found");
    it->second.status = "exited";
    it->second.exit_code = 128 + signal;
    it->second.signal = signal;
    return it->second;
  }
  Result<controlplane::CommandInfo> WaitCommand(const std::string& id, const std::string& command_id,
                                                std::chrono::milliseconds, controlplane::Deadline deadline) override {
    if (auto st = Fault(deadline); !st) return st.error();
    std::lock_guard lock(mu_);
    auto it = commands_[id].find(command_id);
    if (it == commands_[id].end()) return MakeError(ErrorCode::kNotFound, "command not found");
    return it->second;
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
  // An image sandbox's template: creates naming `name` run on `digest`.
  void SetImage(const std::string& name, const std::string& digest) {
    std::lock_guard lock(mu_);
    images_[name] = digest;
  }
  // The template_digest the sandbox was created with ("" = none; "?" = unknown sandbox).
  std::string TemplateDigest(const std::string& sandbox_id) {
    std::lock_guard lock(mu_);
    auto it = template_digest_.find(sandbox_id);
    return it == template_digest_.end() ? "?" : it->second;
  }
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
    std::vector<std::function<void(Result<controlplane::ExecOutcome>)>> held;
    {
      std::lock_guard lock(mu_);
      released_ = true;
      held.swap(held_);
      execs_running_ -= static_cast<int>(held.size());
      cv_.notify_all();
    }
    for (auto& done : held) done(controlplane::ExecOutcome{0, "ran sleep", "", false, false, false});
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
  std::map<std::string, std::map<std::string, controlplane::CommandInfo>> commands_;  // sandbox -> id -> info
  int streams_opened_ = 0;
  std::map<std::string, int> disk_mb_;  // id -> SandboxSpec::disk_mb of its create
  std::map<std::string, std::string> template_digest_, resolved_digest_, images_;
  int execs_running_ = 0;
  std::atomic<bool> async_exec_{false};
  std::vector<std::function<void(Result<controlplane::ExecOutcome>)>> held_;  // async "sleep" execs
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
