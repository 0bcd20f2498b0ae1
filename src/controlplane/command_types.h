// Domain types of commands in a sandbox (streaming exec, background
// commands, terminals) as the control plane sees them through the
// WorkerClient seam (worker_client.h). No gRPC here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace osb::controlplane {

struct CommandSpec {
  std::string cmd;
  std::vector<std::string> args;
  std::map<std::string, std::string> envs;
  std::string cwd;
  int timeout_sec = 0;  // 0 = until the sandbox ends
  bool pty = false;
  int cols = 80;
  int rows = 24;
  bool detach = false;  // false: killed when the stream that started it ends
};

struct CommandInfo {
  std::string id;
  std::string cmd;
  std::vector<std::string> args;
  std::string status;  // "running" | "exited"
  int exit_code = 0;
  int signal = 0;
  bool timed_out = false;
  bool pty = false;
  bool detached = false;
  int64_t started_at_unix_ms = 0;
  int64_t ended_at_unix_ms = 0;
};

// What a command stream delivers, in order: kStarted once, then output
// (kStdout/kStderr), kDropped when retained output was lost before an
// attach, and kExit last.
struct CommandEvent {
  enum Kind { kStarted, kStdout, kStderr, kDropped, kExit } kind = kStdout;
  std::string data;      // kStdout/kStderr
  uint64_t dropped = 0;  // kDropped: bytes lost
  CommandInfo info;      // kStarted/kExit
};

// One bidirectional stream to a command on a worker. Read() is called from
// one thread and the writers from another (never two readers or two
// writers at once). Cancel() may be called from any thread, any time.
class CommandStream {
 public:
  virtual ~CommandStream() = default;
  // Blocks for the next event; false when the stream ended (then Finish()).
  virtual bool Read(CommandEvent* event) = 0;
  // Each returns false once the stream is broken.
  virtual bool WriteStdin(const std::string& data) = 0;
  virtual bool CloseStdin() = 0;
  virtual bool Resize(int cols, int rows) = 0;
  virtual bool Signal(int signal) = 0;
  // No more writes (after the exit).
  virtual void WritesDone() = 0;
  // The stream's final status: the worker's refusal (kNotFound, 429, 400…)
  // or OK. Call after Read returned false.
  virtual Status Finish() = 0;
  virtual void Cancel() = 0;
};

// What a client sends on a command stream (AsyncCommandStream::Write).
struct CommandInput {
  enum Kind { kStdin, kEof, kResize, kSignal, kWritesDone } kind = kStdin;
  std::string data;  // kStdin: at most 64 KiB
  int cols = 0, rows = 0;
  int signal = 0;
};

// The same stream without a thread per stream: every call returns at once
// and results come back through callbacks, from a thread of the client's
// own (never from inside a call; any thread, so the caller locks its own
// state). Reads are pulled: each ReadNext() yields one on_event, so the
// caller reads the next event only when it has delivered the previous one
// (flow control toward a slow client: nothing is buffered here).
// on_done comes once, last — after every on_event and write callback —
// when the stream ended: after the last read (the exit, or the worker's
// refusal) or after Cancel(). The stream drops its callbacks after on_done.
class AsyncCommandStream {
 public:
  struct Callbacks {
    std::function<void(CommandEvent)> on_event;
    std::function<void(Status)> on_done;
  };
  virtual ~AsyncCommandStream() = default;
  // Opens the stream (the start or attach frame goes first). Call once.
  virtual void Start(Callbacks callbacks) = 0;
  // Asks for the next event. One at a time: call again after on_event.
  virtual void ReadNext() = 0;
  // Queues one input; `written(ok)` once it was sent (false: the stream is
  // over). Writes go out in order. `written` may be null.
  virtual void Write(CommandInput input, std::function<void(bool)> written) = 0;
  // Ends the stream now (a command started by it dies; an attached one
  // only detaches). Any thread, any time; on_done follows.
  virtual void Cancel() = 0;
};

}  // namespace osb::controlplane
