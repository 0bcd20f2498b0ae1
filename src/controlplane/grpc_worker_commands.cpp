#include "controlplane/grpc_worker_commands.h"

#include <grpcpp/grpcpp.h>

#include <deque>
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

// False for a frame kind this version does not know (skipped).
bool ToEvent(v1::CommandServerFrame& f, CommandEvent* e) {
  switch (f.kind_case()) {
    case v1::CommandServerFrame::kStarted:
      e->kind = CommandEvent::kStarted;
      e->info = FromProto(f.started());
      return true;
    case v1::CommandServerFrame::kStdout:
      e->kind = CommandEvent::kStdout;
      e->data = std::move(*f.mutable_stdout());
      return true;
    case v1::CommandServerFrame::kStderr:
      e->kind = CommandEvent::kStderr;
      e->data = std::move(*f.mutable_stderr());
      return true;
    case v1::CommandServerFrame::kDropped:
      e->kind = CommandEvent::kDropped;
      e->dropped = f.dropped();
      return true;
    case v1::CommandServerFrame::kExit:
      e->kind = CommandEvent::kExit;
      e->info = FromProto(f.exit());
      return true;
    default:
      return false;
  }
}

v1::CommandClientFrame FirstFrame(const std::string& sandbox_id, const CommandSpec* spec,
                                  const std::string& command_id) {
  v1::CommandClientFrame first;
  if (spec) {
    ToProto(sandbox_id, *spec, first.mutable_start());
  } else {
    first.mutable_attach()->set_sandbox_id(sandbox_id);
    first.mutable_attach()->set_command_id(command_id);
  }
  return first;
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
    while (stream_->Read(&f)) {
      if (ToEvent(f, e)) return true;  // else a frame kind this version does not know
    }
    return false;
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

// The threadless stream: a gRPC callback reactor. One read at a time, only
// when the caller asks (ReadNext), so a slow WebSocket client pauses the
// gRPC reads (and, through HTTP/2 flow control, the worker) instead of
// filling a buffer here. Writes are queued and sent one at a time.
//
// Holds: the reactor keeps one hold while the caller may still start a
// read; it is released when the reads ended (the stream's last frame) or
// on Cancel with no read in flight. Writes from outside reactions start
// only while that hold is held, so none is ever started after OnDone.
class GrpcAsyncCommandStream final : public AsyncCommandStream,
                                     public grpc::ClientBidiReactor<v1::CommandClientFrame, v1::CommandServerFrame>,
                                     public std::enable_shared_from_this<GrpcAsyncCommandStream> {
 public:
  GrpcAsyncCommandStream(v1::WorkerCommands::StubInterface& stub, v1::CommandClientFrame first)
      : stub_(stub), first_(std::move(first)) {}

  void Start(Callbacks cb) override {
    cb_ = std::move(cb);
    self_ = shared_from_this();  // until OnDone
    // No deadline: a stream lasts as long as the command and its client.
    stub_.async()->Stream(&ctx_, this);
    AddHold();
    {
      std::lock_guard lock(mu_);
      writing_ = true;
      writes_.push_back(Pending{std::move(first_), nullptr, false});
      current_ = &writes_.front().frame;
    }
    StartWrite(current_);
    StartCall();
  }

  void ReadNext() override {
    {
      std::lock_guard lock(mu_);
      if (hold_released_ || reading_) return;
      reading_ = true;
    }
    StartRead(&in_);
  }

  void Write(CommandInput in, std::function<void(bool)> written) override {
    Pending p{{}, std::move(written), in.kind == CommandInput::kWritesDone};
    switch (in.kind) {
      case CommandInput::kStdin: p.frame.set_stdin(std::move(in.data)); break;
      case CommandInput::kEof: p.frame.set_stdin_eof(true); break;
      case CommandInput::kResize:
        p.frame.mutable_resize()->set_cols(in.cols);
        p.frame.mutable_resize()->set_rows(in.rows);
        break;
      case CommandInput::kSignal: p.frame.set_signal(in.signal); break;
      case CommandInput::kWritesDone: break;
    }
    std::unique_lock lock(mu_);
    if (write_failed_ || writes_done_ || (hold_released_ && !writing_)) {
      lock.unlock();
      if (p.written) p.written(false);
      return;
    }
    writes_done_ = p.writes_done;
    writes_.push_back(std::move(p));
    if (writing_) return;  // OnWriteDone starts it
    writing_ = true;
    lock.unlock();
    StartNextWrite();
  }

  void Cancel() override {
    bool release = false;
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
      if (!reading_ && !hold_released_) release = hold_released_ = true;
    }
    ctx_.TryCancel();
    if (release) RemoveHold();
  }

  // ---- reactions (gRPC's threads) ----
  void OnReadDone(bool ok) override {
    CommandEvent e;
    const bool known = ok && ToEvent(in_, &e);
    bool release = false;
    {
      std::lock_guard lock(mu_);
      reading_ = false;
      if (!ok || cancelled_) release = !hold_released_, hold_released_ = true;
    }
    if (release) RemoveHold();
    if (!ok || release) return;
    if (!known) return ReadNext();
    cb_.on_event(std::move(e));
  }

  void OnWriteDone(bool ok) override { Written(ok); }
  void OnWritesDoneDone(bool ok) override { Written(ok); }

  void OnDone(const grpc::Status& st) override {
    auto keep = std::move(self_);
    auto cb = std::move(cb_);
    Status out;
    if (!st.ok()) out = proto::FromGrpcStatus(st);
    cb.on_done(std::move(out));
  }

 private:
  struct Pending {
    v1::CommandClientFrame frame;
    std::function<void(bool)> written;
    bool writes_done = false;
  };
  // Starts the front of writes_ (writing_ is set, the front is ours).
  void StartNextWrite() {
    bool done_marker;
    {
      std::lock_guard lock(mu_);
      current_ = &writes_.front().frame;
      done_marker = writes_.front().writes_done;
    }
    if (done_marker) StartWritesDone();
    else StartWrite(current_);
  }

  void Written(bool ok) {
    std::function<void(bool)> written;
    std::deque<Pending> failed;
    bool more;
    {
      std::lock_guard lock(mu_);
      written = std::move(writes_.front().written);
      writes_.pop_front();
      if (!ok) {
        write_failed_ = true;
        failed.swap(writes_);
      }
      more = !writes_.empty();
      writing_ = more;
    }
    if (written) written(ok);
    for (auto& p : failed)
      if (p.written) p.written(false);
    if (more) StartNextWrite();  // within a reaction: always allowed
  }

  v1::WorkerCommands::StubInterface& stub_;
  v1::CommandClientFrame first_;
  grpc::ClientContext ctx_;
  Callbacks cb_;
  std::shared_ptr<GrpcAsyncCommandStream> self_;
  v1::CommandServerFrame in_;
  std::mutex mu_;
  std::deque<Pending> writes_;  // front: in flight while writing_
  const v1::CommandClientFrame* current_ = nullptr;
  bool writing_ = false;
  bool reading_ = false;
  bool hold_released_ = false;
  bool cancelled_ = false;
  bool write_failed_ = false;
  bool writes_done_ = false;
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
  // A failed write shows up as Read() == false and Finish()'s status.
  (void)s->Send(FirstFrame(sandbox_id, spec, command_id));
  return std::unique_ptr<CommandStream>(std::move(s));
}

Result<std::shared_ptr<AsyncCommandStream>> OpenAsync(v1::WorkerCommands::StubInterface& stub,
                                                      const std::string& sandbox_id, const CommandSpec* spec,
                                                      const std::string& command_id) {
  return std::shared_ptr<AsyncCommandStream>(
      std::make_shared<GrpcAsyncCommandStream>(stub, FirstFrame(sandbox_id, spec, command_id)));
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
