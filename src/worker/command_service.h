// CommandService: the worker's WorkerCommands gRPC service (worker.proto):
// streaming exec, background commands and terminals over
// sandbox::SandboxRuntime::StartCommand.
//
// Each command has one pump thread that reads its stdout/stderr (or its
// terminal) as output is produced into a retained ring of at most
// `ring_bytes` (oldest output dropped first, counted). Attached streams
// follow the ring with a cursor. Backpressure instead of loss: while any
// attached stream is `ring_bytes` behind, the pump stops reading, so the
// command blocks on its full pipe; bytes are dropped only when nobody is
// attached (a later attach replays what is retained and is told, with a
// `dropped` frame, how many bytes were lost before it).
//
// A command started by a stream without `detach` belongs to that stream: it
// is killed when the stream ends. Detached commands run until they exit,
// are killed (Kill), time out, or the sandbox ends; the client may leave
// and attach again. Commands are keyed by (sandbox id, command id): a
// command id is only ever found under the sandbox that started it.
//
// Caps: `max_running` commands running per sandbox (RESOURCE_EXHAUSTED),
// `max_retained` ended detached commands kept per sandbox (oldest forgotten).
// Inbound frames (stdin) over 64 KiB are refused (INVALID_ARGUMENT).
//
// Thread safety: all calls are concurrent; per-command state has its own lock.
// Threads: one pump per command; none per attached stream (a stdin write
// that finds the command's stdin full finishes on a short-lived thread, and
// a stream-owned command's clean-up waits on one for up to 5 s).
#pragma once

#include <memory>
#include <string>

#include "proto/worker.grpc.pb.h"
#include "sandbox/runtime.h"

namespace osb::worker {

struct CommandLimits {
  size_t ring_bytes = 1 << 20;
  size_t max_running = 32;
  size_t max_retained = 32;
};

// Stream is served with the callback API (a ServerBidiReactor): an attached
// stream holds no thread; the command's pump wakes it when output arrives,
// and it takes the next output only after the previous frame was written
// (so a slow client backs up into the ring and then the command, as
// before). The other calls are ordinary synchronous ones.
class CommandService final : public v1::WorkerCommands::WithCallbackMethod_Stream<v1::WorkerCommands::Service> {
 public:
  explicit CommandService(sandbox::SandboxRuntime& runtime, CommandLimits limits = {});
  ~CommandService() override;  // kills every command it started

  grpc::ServerBidiReactor<v1::CommandClientFrame, v1::CommandServerFrame>* Stream(
      grpc::CallbackServerContext* ctx) override;
  grpc::Status Start(grpc::ServerContext*, const v1::CommandStart*, v1::CommandInfo*) override;
  grpc::Status List(grpc::ServerContext*, const v1::ListCommandsRequest*, v1::ListCommandsResponse*) override;
  grpc::Status Kill(grpc::ServerContext*, const v1::KillCommandRequest*, v1::CommandInfo*) override;
  grpc::Status Wait(grpc::ServerContext*, const v1::WaitCommandRequest*, v1::CommandInfo*) override;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace osb::worker
