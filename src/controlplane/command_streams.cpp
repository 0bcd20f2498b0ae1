#include "controlplane/command_streams.h"

#include "controlplane/worker_client.h"

namespace osb::controlplane {

// ---- WorkerClient defaults (implementations without commands) -------------

namespace {
Error NoCommands() { return MakeError(ErrorCode::kFailedPrecondition, "this worker does not support commands"); }
}  // namespace

Result<std::unique_ptr<CommandStream>> WorkerClient::OpenCommandStream(const std::string&, const CommandSpec*,
                                                                       const std::string&) {
  return NoCommands();
}
Result<CommandInfo> WorkerClient::StartCommand(const std::string&, const CommandSpec&, Deadline) {
  return NoCommands();
}
Result<std::vector<CommandInfo>> WorkerClient::ListCommands(const std::string&, Deadline) { return NoCommands(); }
Result<CommandInfo> WorkerClient::KillCommand(const std::string&, const std::string&, int, Deadline) {
  return NoCommands();
}
Result<CommandInfo> WorkerClient::WaitCommand(const std::string&, const std::string&, std::chrono::milliseconds,
                                              Deadline) {
  return NoCommands();
}

// ---- CommandService --------------------------------------------------------

namespace {

// Gives the org's stream slot back when the stream goes away.
class CountedStream final : public CommandStream {
 public:
  CountedStream(std::unique_ptr<CommandStream> inner, std::function<void()> release)
      : inner_(std::move(inner)), release_(std::move(release)) {}
  ~CountedStream() override {
    inner_.reset();
    release_();
  }
  bool Read(CommandEvent* e) override { return inner_->Read(e); }
  bool WriteStdin(const std::string& d) override { return inner_->WriteStdin(d); }
  bool CloseStdin() override { return inner_->CloseStdin(); }
  bool Resize(int c, int r) override { return inner_->Resize(c, r); }
  bool Signal(int s) override { return inner_->Signal(s); }
  void WritesDone() override { inner_->WritesDone(); }
  Status Finish() override { return inner_->Finish(); }
  void Cancel() override { inner_->Cancel(); }

 private:
  std::unique_ptr<CommandStream> inner_;
  std::function<void()> release_;
};

class CountedAsyncStream final : public AsyncCommandStream {
 public:
  CountedAsyncStream(std::shared_ptr<AsyncCommandStream> inner, std::function<void()> release)
      : inner_(std::move(inner)), release_(std::move(release)) {}
  ~CountedAsyncStream() override { release_(); }
  void Start(Callbacks cb) override { inner_->Start(std::move(cb)); }
  void ReadNext() override { inner_->ReadNext(); }
  void Write(CommandInput in, std::function<void(bool)> written) override {
    inner_->Write(std::move(in), std::move(written));
  }
  void Cancel() override { inner_->Cancel(); }

 private:
  std::shared_ptr<AsyncCommandStream> inner_;
  std::function<void()> release_;
};

}  // namespace

Result<std::shared_ptr<WorkerClient>> CommandService::ClientFor(const std::string& org_id,
                                                                const std::string& sandbox_id) {
  auto row = store_.GetSandbox(org_id, sandbox_id);
  if (!row) return row.error();
  if (row->status != "running") return MakeError(ErrorCode::kConflict, "sandbox " + sandbox_id + " is not running");
  return workers_.ClientFor(row->worker_id);
}

bool CommandService::Admit(const std::string& org_id) {
  std::lock_guard lock(mu_);
  auto& n = streams_[org_id];
  if (limits_.max_streams_per_org && n >= limits_.max_streams_per_org) return false;
  ++n;
  return true;
}

void CommandService::Release(const std::string& org_id) {
  std::lock_guard lock(mu_);
  auto it = streams_.find(org_id);
  if (it != streams_.end() && --it->second == 0) streams_.erase(it);
}

Status CommandService::WaitAsync(const std::string& org_id, const std::string& sandbox_id,
                                 const std::string& command_id, std::chrono::milliseconds wait,
                                 std::function<void(Result<CommandInfo>)> done) {
  return waits_.Submit(org_id, [this, org_id, sandbox_id, command_id, wait, done = std::move(done)] {
    done(Wait(org_id, sandbox_id, command_id, wait));
  });
}

Status CommandService::CheckSandbox(const std::string& org_id, const std::string& sandbox_id) {
  auto client = ClientFor(org_id, sandbox_id);
  if (!client) return client.error();
  return {};
}

size_t CommandService::OpenStreams(const std::string& org_id) {
  std::lock_guard lock(mu_);
  auto it = streams_.find(org_id);
  return it == streams_.end() ? 0 : it->second;
}

Result<std::unique_ptr<CommandStream>> CommandService::Counted(const std::string& org_id,
                                                               Result<std::unique_ptr<CommandStream>> stream) {
  if (!stream) {
    Release(org_id);
    return stream.error();
  }
  return std::unique_ptr<CommandStream>(
      std::make_unique<CountedStream>(std::move(*stream), [this, org_id] { Release(org_id); }));
}

Result<std::unique_ptr<CommandStream>> CommandService::Open(const std::string& org_id, const std::string& sandbox_id,
                                                            const CommandSpec& spec) {
  auto client = ClientFor(org_id, sandbox_id);
  if (!client) return client.error();
  if (!Admit(org_id)) {
    return MakeError(ErrorCode::kResourceExhausted,
                     "too many open command streams for this org (limit " +
                         std::to_string(limits_.max_streams_per_org) + ")");
  }
  return Counted(org_id, (*client)->OpenCommandStream(sandbox_id, &spec, ""));
}

Result<std::unique_ptr<CommandStream>> CommandService::Attach(const std::string& org_id,
                                                              const std::string& sandbox_id,
                                                              const std::string& command_id) {
  auto client = ClientFor(org_id, sandbox_id);
  if (!client) return client.error();
  if (!Admit(org_id)) {
    return MakeError(ErrorCode::kResourceExhausted,
                     "too many open command streams for this org (limit " +
                         std::to_string(limits_.max_streams_per_org) + ")");
  }
  return Counted(org_id, (*client)->OpenCommandStream(sandbox_id, nullptr, command_id));
}

Status CommandService::AdmitOrRefuse(const std::string& org_id) {
  if (Admit(org_id)) return {};
  return MakeError(ErrorCode::kResourceExhausted, "too many open command streams for this org (limit " +
                                                      std::to_string(limits_.max_streams_per_org) + ")");
}

Result<std::shared_ptr<AsyncCommandStream>> CommandService::CountedAsync(
    const std::string& org_id, Result<std::shared_ptr<AsyncCommandStream>> stream) {
  if (!stream) {
    Release(org_id);
    return stream.error();
  }
  return std::shared_ptr<AsyncCommandStream>(
      std::make_shared<CountedAsyncStream>(std::move(*stream), [this, org_id] { Release(org_id); }));
}

Result<std::shared_ptr<AsyncCommandStream>> CommandService::OpenAsync(const std::string& org_id,
                                                                      const std::string& sandbox_id,
                                                                      const CommandSpec& spec) {
  auto client = ClientFor(org_id, sandbox_id);
  if (!client) return client.error();
  if (Status st = AdmitOrRefuse(org_id); !st) return st.error();
  return CountedAsync(org_id, (*client)->OpenCommandStreamAsync(sandbox_id, &spec, ""));
}

Result<std::shared_ptr<AsyncCommandStream>> CommandService::AttachAsync(const std::string& org_id,
                                                                        const std::string& sandbox_id,
                                                                        const std::string& command_id) {
  auto client = ClientFor(org_id, sandbox_id);
  if (!client) return client.error();
  if (Status st = AdmitOrRefuse(org_id); !st) return st.error();
  return CountedAsync(org_id, (*client)->OpenCommandStreamAsync(sandbox_id, nullptr, command_id));
}

Result<CommandInfo> CommandService::Start(const std::string& org_id, const std::string& sandbox_id,
                                          CommandSpec spec) {
  auto client = ClientFor(org_id, sandbox_id);
  if (!client) return client.error();
  spec.detach = true;
  return (*client)->StartCommand(sandbox_id, spec, After(limits_.call_deadline));
}

Result<std::vector<CommandInfo>> CommandService::List(const std::string& org_id, const std::string& sandbox_id) {
  auto client = ClientFor(org_id, sandbox_id);
  if (!client) return client.error();
  return (*client)->ListCommands(sandbox_id, After(limits_.call_deadline));
}

Result<CommandInfo> CommandService::Get(const std::string& org_id, const std::string& sandbox_id,
                                        const std::string& command_id) {
  auto list = List(org_id, sandbox_id);
  if (!list) return list.error();
  for (auto& c : *list)
    if (c.id == command_id) return c;
  return MakeError(ErrorCode::kNotFound, "command " + command_id + " not found");
}

Result<CommandInfo> CommandService::Kill(const std::string& org_id, const std::string& sandbox_id,
                                         const std::string& command_id, int signal) {
  auto client = ClientFor(org_id, sandbox_id);
  if (!client) return client.error();
  return (*client)->KillCommand(sandbox_id, command_id, signal, After(limits_.call_deadline));
}

Result<CommandInfo> CommandService::Wait(const std::string& org_id, const std::string& sandbox_id,
                                         const std::string& command_id, std::chrono::milliseconds wait) {
  auto client = ClientFor(org_id, sandbox_id);
  if (!client) return client.error();
  return (*client)->WaitCommand(sandbox_id, command_id, wait,
                                After(wait + std::chrono::duration_cast<std::chrono::milliseconds>(limits_.call_deadline)));
}

}  // namespace osb::controlplane
