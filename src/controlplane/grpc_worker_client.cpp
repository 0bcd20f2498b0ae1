#include "controlplane/grpc_worker_client.h"

#include <grpcpp/grpcpp.h>

#include "common/secure_memory.h"
#include "controlplane/file_data_client.h"
#include "controlplane/grpc_worker_commands.h"
#include "controlplane/secret_proto.h"
#include "proto/status_mapping.h"
#include "proto/worker.grpc.pb.h"

namespace osb::controlplane {
namespace {

std::unique_ptr<grpc::ClientContext> Context(Deadline deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(deadline);
  return ctx;
}

Error FromStatus(const grpc::Status& st) { return proto::FromGrpcStatus(st); }

v1::ExecRequest MakeExecRequest(const std::string& sandbox_id, const ExecCommand& cmd) {
  v1::ExecRequest req;
  req.set_sandbox_id(sandbox_id);
  req.set_cmd(cmd.cmd);
  for (const auto& a : cmd.args) req.add_args(a);
  for (const auto& [k, v] : cmd.envs) (*req.mutable_envs())[k] = v;
  req.set_cwd(cmd.cwd);
  req.set_timeout_sec(cmd.timeout_sec);
  return req;
}

Result<ExecOutcome> ExecResult(const grpc::Status& st, const v1::ExecResponse& resp) {
  if (!st.ok()) return FromStatus(st);
  return ExecOutcome{resp.exit_code(),        resp.stdout(),           resp.stderr(),
                     resp.stdout_truncated(), resp.stderr_truncated(), resp.timed_out()};
}

class GrpcWorkerClient final : public WorkerClient {
 public:
  explicit GrpcWorkerClient(std::shared_ptr<grpc::Channel> channel, std::unique_ptr<FileDataClient> file_data = nullptr)
      : channel_(channel),
        stub_(v1::Worker::NewStub(channel)),
        commands_(v1::WorkerCommands::NewStub(channel)),
        file_data_(std::move(file_data)) {}

  Result<StartedSandbox> Create(const SandboxSpec& spec, Deadline deadline) override {
    v1::CreateSandboxRequest req;
    req.set_sandbox_id(spec.id);
    auto* cfg = req.mutable_config();
    cfg->set_project_id(spec.project_id);
    cfg->set_template_id(spec.template_id);
    cfg->set_cpu_count(spec.cpu_count);
    cfg->set_memory_mb(spec.memory_mb);
    cfg->set_timeout_sec(spec.timeout_sec);
    cfg->set_disk_mb(spec.disk_mb);
    cfg->set_template_digest(spec.template_digest);
    for (const auto& h : spec.egress_allowlist) cfg->add_egress_allowlist(h);
    for (const auto& [k, v] : spec.envs) (*cfg->mutable_envs())[k] = v;
    req.set_from_checkpoint(spec.from_checkpoint);
    for (const auto& s : spec.secrets) {
      auto* out = req.add_secrets();
      out->set_name(s.name);
      out->set_value(s.value);
      for (const auto& h : s.allowed_hosts) out->add_allowed_hosts(h);
      FillSecretKindFields(s, out);
    }
    v1::SandboxInfo info;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->CreateSandbox(ctx.get(), req, &info);
    for (auto& s : *req.mutable_secrets()) SecureWipe(*s.mutable_value());
    if (!st.ok()) return FromStatus(st);
    return StartedSandbox{info.started_at_unix_ms(), info.end_at_unix_ms()};
  }

  Status Destroy(const std::string& sandbox_id, Deadline deadline) override {
    v1::DestroySandboxRequest req;
    req.set_sandbox_id(sandbox_id);
    v1::DestroySandboxResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->DestroySandbox(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    return {};
  }

  Result<ExecOutcome> Exec(const std::string& sandbox_id, const ExecCommand& cmd, Deadline deadline) override {
    v1::ExecRequest req = MakeExecRequest(sandbox_id, cmd);
    v1::ExecResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->Exec(ctx.get(), req, &resp);
    return ExecResult(st, resp);
  }

  // gRPC's callback API: no thread of ours waits for the command; gRPC calls
  // back on its own (few) threads when the worker answers or the deadline
  // passes. The call state lives on the heap until then, with the channel.
  bool ExecAsync(const std::string& sandbox_id, const ExecCommand& cmd, Deadline deadline,
                 std::function<void(Result<ExecOutcome>)> done) override {
    struct Call {
      std::shared_ptr<grpc::Channel> channel;
      grpc::ClientContext ctx;
      v1::ExecRequest req;
      v1::ExecResponse resp;
      std::function<void(Result<ExecOutcome>)> done;
    };
    auto* call = new Call{channel_, {}, MakeExecRequest(sandbox_id, cmd), {}, std::move(done)};
    call->ctx.set_deadline(deadline);
    stub_->async()->Exec(&call->ctx, &call->req, &call->resp, [call](grpc::Status st) {
      std::unique_ptr<Call> owned(call);
      owned->done(ExecResult(st, owned->resp));
    });
    return true;
  }

  Result<std::vector<std::string>> List(Deadline deadline) override {
    v1::ListSandboxesRequest req;
    v1::ListSandboxesResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->ListSandboxes(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    std::vector<std::string> ids;
    for (const auto& s : resp.sandboxes()) ids.push_back(s.sandbox_id());
    return ids;
  }

  Result<bool> UpdateSecret(const std::string& sandbox_id, const PlainSecret& secret, Deadline deadline) override {
    v1::UpdateSecretRequest req;
    req.set_sandbox_id(sandbox_id);
    req.set_name(secret.name);
    req.set_value(secret.value);
    for (const auto& h : secret.allowed_hosts) req.add_allowed_hosts(h);
    FillSecretKindFields(secret, &req);
    auto out = Update(req, deadline);
    SecureWipe(*req.mutable_value());
    return out;
  }

  Result<bool> RemoveSecret(const std::string& sandbox_id, const std::string& name, Deadline deadline) override {
    v1::UpdateSecretRequest req;
    req.set_sandbox_id(sandbox_id);
    req.set_name(name);
    req.set_deleted(true);
    return Update(req, deadline);
  }

  Result<CheckpointSaved> Checkpoint(const std::string& sandbox_id, const std::string& checkpoint_id,
                                     Deadline deadline) override {
    v1::CheckpointSandboxRequest req;
    req.set_sandbox_id(sandbox_id);
    req.set_checkpoint_id(checkpoint_id);
    v1::CheckpointSandboxResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->CheckpointSandbox(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    return CheckpointSaved{resp.size_bytes(), resp.entries(), resp.template_digest(), resp.disk_mb()};
  }

  Status DeleteCheckpoint(const std::string& checkpoint_id, Deadline deadline) override {
    v1::DeleteCheckpointRequest req;
    req.set_checkpoint_id(checkpoint_id);
    v1::DeleteCheckpointResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->DeleteCheckpoint(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    return {};
  }

  Result<StartedSandbox> SetTimeout(const std::string& sandbox_id, int64_t end_at_unix_ms,
                                    Deadline deadline) override {
    v1::SetSandboxTimeoutRequest req;
    req.set_sandbox_id(sandbox_id);
    req.set_end_at_unix_ms(end_at_unix_ms);
    v1::SandboxInfo info;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->SetSandboxTimeout(ctx.get(), req, &info);
    if (!st.ok()) return FromStatus(st);
    return StartedSandbox{info.started_at_unix_ms(), info.end_at_unix_ms()};
  }

  Result<std::shared_ptr<AsyncCommandStream>> OpenCommandStreamAsync(const std::string& sandbox_id,
                                                                     const CommandSpec* spec,
                                                                     const std::string& command_id) override {
    return grpc_commands::OpenAsync(*commands_, sandbox_id, spec, command_id);
  }
  Result<std::unique_ptr<CommandStream>> OpenCommandStream(const std::string& sandbox_id, const CommandSpec* spec,
                                                           const std::string& command_id) override {
    return grpc_commands::Open(*commands_, sandbox_id, spec, command_id);
  }
  Result<CommandInfo> StartCommand(const std::string& sandbox_id, const CommandSpec& spec, Deadline d) override {
    return grpc_commands::Start(*commands_, sandbox_id, spec, d);
  }
  Result<std::vector<CommandInfo>> ListCommands(const std::string& sandbox_id, Deadline d) override {
    return grpc_commands::List(*commands_, sandbox_id, d);
  }
  Result<CommandInfo> KillCommand(const std::string& sandbox_id, const std::string& command_id, int signal,
                                  Deadline d) override {
    return grpc_commands::Kill(*commands_, sandbox_id, command_id, signal, d);
  }
  Result<CommandInfo> WaitCommand(const std::string& sandbox_id, const std::string& command_id,
                                  std::chrono::milliseconds wait, Deadline d) override {
    return grpc_commands::Wait(*commands_, sandbox_id, command_id, wait, d);
  }

  // --- files: chunks of at most 1 MiB, bounded by gRPC flow control ------
  Result<int64_t> UploadFile(const std::string& sandbox_id, const std::string& path, uint32_t mode,
                             const ChunkSource& next, Deadline deadline) override {
    // The worker's file data port when it has one (file_data_client.h).
    if (file_data_) {
      if (auto done = file_data_->Upload(sandbox_id, path, mode, next, deadline)) return std::move(*done);
    }
    auto ctx = Context(deadline);
    v1::FileUploadResponse resp;
    auto writer = stub_->UploadFile(ctx.get(), &resp);
    v1::FileUploadRequest msg;
    auto* h = msg.mutable_header();
    h->set_sandbox_id(sandbox_id);
    h->set_path(path);
    h->set_mode(mode);
    bool open = writer->Write(msg);
    std::optional<Error> source_error;
    while (open) {
      auto chunk = next();
      if (!chunk) {
        source_error = chunk.error();
        break;
      }
      if (!*chunk) break;
      // The worker takes chunks of up to 1 MiB (file_service.cpp); a piece
      // that fits is moved into the message, not copied.
      constexpr size_t kMax = 1024 * 1024;
      std::string& piece = **chunk;
      if (piece.size() <= kMax) {
        msg.Clear();
        msg.set_chunk(std::move(piece));
        open = writer->Write(msg);
        continue;
      }
      for (size_t off = 0; open && off < piece.size(); off += kMax) {
        msg.Clear();
        msg.set_chunk(piece.substr(off, kMax));
        open = writer->Write(msg);
      }
    }
    if (source_error) {
      // The client went away: cancel, so the worker removes the temp file.
      ctx->TryCancel();
      (void)writer->Finish();
      return *source_error;
    }
    if (open) writer->WritesDone();
    const grpc::Status st = writer->Finish();
    if (!st.ok()) return FromStatus(st);
    return resp.size();
  }

  Status DownloadFile(const std::string& sandbox_id, const std::string& path, const DownloadSink& sink,
                      Deadline deadline) override {
    if (file_data_) {
      if (auto done = file_data_->Download(sandbox_id, path, sink, deadline)) return std::move(*done);
    }
    auto ctx = Context(deadline);
    v1::FileDownloadRequest req;
    req.set_sandbox_id(sandbox_id);
    req.set_path(path);
    auto reader = stub_->DownloadFile(ctx.get(), req);
    v1::FileDownloadChunk chunk;
    bool first = true;
    int64_t expected = 0, got = 0;
    while (reader->Read(&chunk)) {
      if (first) {
        expected = chunk.size();
        if (!sink.on_size(expected)) {
          ctx->TryCancel();
          (void)reader->Finish();
          return MakeError(ErrorCode::kUnavailable, "download: the reader went away");
        }
        first = false;
      }
      got += static_cast<int64_t>(chunk.data().size());
      if (!chunk.data().empty() && !sink.on_chunk(std::move(*chunk.mutable_data()))) {
        ctx->TryCancel();
        (void)reader->Finish();
        return MakeError(ErrorCode::kUnavailable, "download: the reader went away");
      }
    }
    const grpc::Status st = reader->Finish();
    if (!st.ok()) return FromStatus(st);
    if (first || got != expected) return MakeError(ErrorCode::kDataLoss, "download: incomplete stream from the worker");
    return {};
  }

  Result<FileListing> ListFiles(const std::string& sandbox_id, const std::string& path, Deadline deadline) override {
    v1::ListFilesRequest req;
    req.set_sandbox_id(sandbox_id);
    req.set_path(path);
    v1::ListFilesResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->ListFiles(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    FileListing out;
    out.truncated = resp.truncated();
    for (const auto& e : resp.entries()) {
      out.entries.push_back({e.name(), e.type(), e.size(), e.mode(), e.mtime_unix_ms()});
    }
    return out;
  }

  Status MakeDirectory(const std::string& sandbox_id, const std::string& path, bool parents, uint32_t mode,
                       Deadline deadline) override {
    v1::MakeDirectoryRequest req;
    req.set_sandbox_id(sandbox_id);
    req.set_path(path);
    req.set_parents(parents);
    req.set_mode(mode);
    v1::FileOpResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->MakeDirectory(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    return {};
  }

  Status RemoveFile(const std::string& sandbox_id, const std::string& path, bool recursive,
                    Deadline deadline) override {
    v1::RemoveFileRequest req;
    req.set_sandbox_id(sandbox_id);
    req.set_path(path);
    req.set_recursive(recursive);
    v1::FileOpResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->RemoveFile(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    return {};
  }

 private:
  Result<bool> Update(const v1::UpdateSecretRequest& req, Deadline deadline) {
    v1::UpdateSecretResponse resp;
    auto ctx = Context(deadline);
    const grpc::Status st = stub_->UpdateSecret(ctx.get(), req, &resp);
    if (!st.ok()) return FromStatus(st);
    return resp.applied();
  }

  std::shared_ptr<grpc::Channel> channel_;  // kept alive by calls in flight (ExecAsync)
  std::unique_ptr<v1::Worker::StubInterface> stub_;
  std::unique_ptr<v1::WorkerCommands::StubInterface> commands_;
  std::unique_ptr<FileDataClient> file_data_;  // null without mutual TLS
};

}  // namespace

std::shared_ptr<WorkerClient> GrpcWorkerConnector::Connect(const std::string& /*worker_id*/,
                                                           const std::string& address) {
  auto channel = proto::MakeChannel(address, tls_, proto::GrpcRole::kWorker);
  // File bytes over the worker's mutual-TLS data port; never in plaintext.
  auto file_data = tls_ ? FileDataClient::Make(channel, HostOfAddress(address), *tls_) : nullptr;
  return std::make_shared<GrpcWorkerClient>(std::move(channel), std::move(file_data));
}

}  // namespace osb::controlplane
