// Domain types of commands in a sandbox (streaming exec, background
// commands, terminals) as the control plane sees them through the
// WorkerClient seam (worker_client.h). No gRPC here.
#pragma once

#include <cstdint>
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

}  // namespace osb::controlplane
