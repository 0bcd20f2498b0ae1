#include "controlplane/grpc_worker_commands.h"

#include <grpcpp/grpcpp.h>

#include <mutex>

#include "proto/status_mapping.h"

namespace osb::controlplane::grpc_commands {
namespace {

CommandInfo FromProto(const v1::CommandInfo& p) {
  CommandInfo c;
  c.id = p.command_id();
  c.cmd = p.cmd();
  c.args.assign(p.args().begin(), p.args().end());
  c.status = p.status();
  c.exit_code = p.exit_code();
  c.signal = p.signal();
  c.timed_out = p.timed_out();
  c.pty = p.pty();
  c.detached = p.detached();
  c.started_at_unix_ms = p.started_at_unix_ms();
  c.ended_at_unix_ms = p.ended_at_unix_ms();
  return c;
}

void ToProto(const std::string& sandbox_id, const CommandSpec& s, v1::CommandStart* out) {
  out->set_sandbox_id(sandbox_id);
  out->set_cmd(s.cmd);
  for (const auto& a : s.args) out->add_args(a);
  for (const auto& [k, v] : s.envs) (*out->mutable_envs())[k] = v;
  out->set_cwd(s.cwd);
  out->set_timeout_sec(s.timeout_sec);
  out->set_pty(s.pty);
  out->set_cols(s.cols);
  out->set_rows(s.rows);
  out->set_detach(s.detach);
}

class GrpcCommandStream final : public CommandStream {
 public:
  explicit GrpcCommandStream(v1::WorkerCommands::StubInterface& stub) {
    // No deadline: a stream lasts as long as the command and its client.
    stream_ = stub.Stream(&ctx_);
  }
  ~GrpcCommandStream() override {
    if (!finished_) {
      ctx_.TryCancel();
      (void)stream_->Finish();
    }
  }

  bool Read(CommandEvent* e) override {
    v1::CommandServerFrame f;
    if (!stream_->Read(&f)) return false;
    switch (f.kind_case()) {
      case v1::CommandServerFrame::kStarted:
        e->kind = CommandEvent::kStarted;
        e->info = FromProto(f.started());
        break;
      case v1::CommandServerFrame::kStdout:
        e->kind = CommandEvent::kStdout;
        e->data = std::move(*f.mutable_stdout());
        break;
      case v1::CommandServerFrame::kStderr:
        e->kind = CommandEvent::kStderr;
        e->data = std::move(*f.mutable_stderr());
        break;
      case v1::CommandServerFrame::kDropped:
        e->kind = CommandEvent::kDropped;
        e->dropped = f.dropped();
        break;
      case v1::CommandServerFrame::kExit:
        e->kind = CommandEvent::kExit;
        e->info = FromProto(f.exit());
        break;
      default:
        return Read(e);  // a frame kind this version does not know
    }
    return true;
  }

  bool Write(const v1::CommandClientFrame& f) {
    std::lock_guard lock(write_mu_);
    if (writes_done_) return false;
    return stream_->Write(f);
  }
  bool WriteStdin(const std::string& data) override {
    v1::CommandClientFrame f;
    f.set_stdin(data);
    return Write(f);
  }
  bool CloseStdin() override {
    v1::CommandClientFrame f;
    f.set_stdin_eof(true);
    return Write(f);
  }
  bool Resize(int cols, int rows) override {
    v1::CommandClientFrame f;
    f.mutable_resize()->set_cols(cols);
    f.mutable_resize()->set_rows(rows);
    return Write(f);
  }
  bool Signal(int signal) override {
    v1::CommandClientFrame f;
    f.set_signal(signal);
    return Write(f);
  }
  void WritesDone() override {
    std::lock_guard lock(write_mu_);
    if (writes_done_) return;
    writes_done_ = true;
    (void)stream_->WritesDone();
  }
  Status Finish() override {
    WritesDone();
    finished_ = true;
    const grpc::Status st = stream_->Finish();
    if (!st.ok()) return proto::FromGrpcStatus(st);
    return {};
  }
  void Cancel() override { ctx_.TryCancel(); }

  bool Send(const v1::CommandClientFrame& first) { return Write(first); }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriterInterface<v1::CommandClientFrame, v1::CommandServerFrame>> stream_;
  std::mutex write_mu_;
  bool writes_done_ = false;
  bool finished_ = false;
};

std::unique_ptr<grpc::ClientContext> Context(Deadline deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(deadline);
  return ctx;
}

}  // namespace

Result<std::unique_ptr<CommandStream>> Open(v1::WorkerCommands::StubInterface& stub, const std::string& sandbox_id,
                                            const CommandSpec* spec, const std::string& command_id) {
  auto s = std::make_unique<GrpcCommandStream>(stub);
  v1::CommandClientFrame first;
  if (spec) {
    ToProto(sandbox_id, *spec, first.mutable_start());
  } else {
    first.mutable_attach()->set_sandbox_id(sandbox_id);
    first.mutable_attach()->set_command_id(command_id);
  }
  // A failed write shows up as Read() == false and Finish()'s status.
  (void)s->Send(first);
  return std::unique_ptr<CommandStream>(std::move(s));
}

Result<CommandInfo> Start(v1::WorkerCommands::StubInterface& stub, const std::string& sandbox_id,
                          const CommandSpec& spec, Deadline deadline) {
  v1::CommandStart req;
  ToProto(sandbox_id, spec, &req);
  v1::CommandInfo resp;
  auto ctx = Context(deadline);
  const grpc::Status st = stub.Start(ctx.get(), req, &resp);
  if (!st.ok()) return proto::FromGrpcStatus(st);
  return FromProto(resp);
}

Result<std::vector<CommandInfo>> List(v1::WorkerCommands::StubInterface& stub, const std::string& sandbox_id,
                                      Deadline deadline) {
  v1::ListCommandsRequest req;
  req.set_sandbox_id(sandbox_id);
  v1::ListCommandsResponse resp;
  auto ctx = Context(deadline);
  const grpc::Status st = stub.List(ctx.get(), req, &resp);
  if (!st.ok()) return proto::FromGrpcStatus(st);
  std::vector<CommandInfo> out;
  for (const auto& c : resp.commands()) out.push_back(FromProto(c));
  return out;
}

Result<CommandInfo> Kill(v1::WorkerCommands::StubInterface& stub, const std::string& sandbox_id,
                         const std::string& command_id, int signal, Deadline deadline) {
  v1::KillCommandRequest req;
  req.set_sandbox_id(sandbox_id);
  req.set_command_id(command_id);
  req.set_signal(signal);
  v1::CommandInfo resp;
  auto ctx = Context(deadline);
  const grpc::Status st = stub.Kill(ctx.get(), req, &resp);
  if (!st.ok()) return proto::FromGrpcStatus(st);
  return FromProto(resp);
}

Result<CommandInfo> Wait(v1::WorkerCommands::StubInterface& stub, const std::string& sandbox_id,
                         const std::string& command_id, std::chrono::milliseconds wait, Deadline deadline) {
  v1::WaitCommandRequest req;
  req.set_sandbox_id(sandbox_id);
  req.set_command_id(command_id);
  req.set_timeout_ms(static_cast<int32_t>(wait.count()));
  v1::CommandInfo resp;
  auto ctx = Context(deadline);
  const grpc::Status st = stub.Wait(ctx.get(), req, &resp);
  if (!st.ok()) return proto::FromGrpcStatus(st);
  return FromProto(resp);
}

}  // namespace osb::controlplane::grpc_commands
