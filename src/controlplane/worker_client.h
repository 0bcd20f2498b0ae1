// WorkerClient: how control-plane logic talks to one worker, in domain terms
// (no gRPC, no protobuf). The gRPC adapter (controlplane/grpc_worker_client.h)
// is the production implementation; tests use an in-memory fake
// (tests/controlplane/fake_worker.h), so scheduling, refresh fan-out, lost
// workers and reconcile are tested without root or a worker process.
//
// WorkerConnector turns a registered worker (id, address) into a client; the
// WorkerPool asks it once per worker and caches the result. Wiring lives in
// one place: api/sandbox_plane.cpp picks the gRPC connector.
//
// Errors (every method): kUnavailable when the worker cannot be reached or the
// deadline passed; kNotFound when the worker does not know the sandbox; other
// codes as the worker reports them. Never a secret value in an error.
// Thread safety: implementations are called concurrently from many threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "controlplane/command_types.h"
#include "controlplane/secrets.h"

namespace osb::controlplane {

// Everything a worker needs to start one sandbox. `secrets` hold values
// (wiped on destruction); they travel only over the worker channel.
struct SandboxSpec {
  std::string id;
  std::string project_id;  // "" without a project
  std::string template_id;
  int cpu_count = 0;
  int memory_mb = 0;
  int disk_mb = 0;  // 0 = the worker's default
  // An imported image by its config digest, "sha256:<hex>": the org's
  // template (template_id) or, for a checkpoint's restore, the image its
  // files were saved over; "" = resolve template_id on the worker.
  std::string template_digest;
  int timeout_sec = 0;
  std::vector<std::string> egress_allowlist;
  std::map<std::string, std::string> envs;
  std::vector<PlainSecret> secrets;
  // A checkpoint on this worker to restore into the new sandbox ("" = none).
  std::string from_checkpoint;
};

struct CheckpointSaved {
  int64_t size_bytes = 0;
  int64_t entries = 0;
  std::string template_digest;  // an image sandbox's image ("" for base)
  int disk_mb = 0;              // and its disk
};

struct StartedSandbox {
  int64_t started_at_unix_ms = 0;
  int64_t end_at_unix_ms = 0;
};

struct ExecCommand {
  std::string cmd;
  std::vector<std::string> args;
  std::map<std::string, std::string> envs;
  std::string cwd;
  int timeout_sec = 60;
};

struct ExecOutcome {
  int exit_code = 0;
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  bool timed_out = false;
};

using Deadline = std::chrono::system_clock::time_point;

// Files (issue 15, docs/files.md).
struct FileEntryView {
  std::string name;
  std::string type;  // file, dir, symlink, fifo, socket, char-device, block-device, other
  int64_t size = 0;
  uint32_t mode = 0;
  int64_t mtime_unix_ms = 0;
};
struct FileListing {
  std::vector<FileEntryView> entries;
  bool truncated = false;
};
// Pulls an upload's next chunk (blocking): a chunk, nullopt at the clean
// end, or an error (the client went away: the upload is abandoned).
using ChunkSource = std::function<Result<std::optional<std::string>>()>;
// Receives a download: on_size once before any data (the file's size),
// then every chunk in order; returning false cancels the transfer.
struct DownloadSink {
  std::function<bool(int64_t size)> on_size;
  std::function<bool(std::string chunk)> on_chunk;
};

class WorkerClient {
 public:
  virtual ~WorkerClient() = default;

  virtual Result<StartedSandbox> Create(const SandboxSpec& spec, Deadline deadline) = 0;
  virtual Status Destroy(const std::string& sandbox_id, Deadline deadline) = 0;
  // Blocks for the command's lifetime (callers run it off request threads).
  virtual Result<ExecOutcome> Exec(const std::string& sandbox_id, const ExecCommand& cmd, Deadline deadline) = 0;
  // The same call without a waiting thread: returns at once and calls
  // `done` exactly once, later, from a thread of the client's own (never
  // from inside ExecAsync), when the command ended or the deadline passed.
  // Returns false, without calling `done`, when this client has no
  // asynchronous exec (then the caller runs Exec on an executor).
  virtual bool ExecAsync(const std::string& sandbox_id, const ExecCommand& cmd, Deadline deadline,
                         std::function<void(Result<ExecOutcome>)> done);
  // Ids of the sandboxes the worker runs now.
  virtual Result<std::vector<std::string>> List(Deadline deadline) = 0;
  // Live refresh of one secret in one sandbox. Returns whether the sandbox
  // had a token for it (false: nothing to change there).
  virtual Result<bool> UpdateSecret(const std::string& sandbox_id, const PlainSecret& secret,
                                    Deadline deadline) = 0;
  virtual Result<bool> RemoveSecret(const std::string& sandbox_id, const std::string& name, Deadline deadline) = 0;

  // Checkpoints and lifetime (issue 14). Defaults answer kFailedPrecondition so a
  // client that predates them (a test fake) keeps compiling.
  // Saves the sandbox's files as `checkpoint_id` on the worker.
  virtual Result<CheckpointSaved> Checkpoint(const std::string& sandbox_id, const std::string& checkpoint_id,
                                             Deadline deadline);
  virtual Status DeleteCheckpoint(const std::string& checkpoint_id, Deadline deadline);
  // Moves the sandbox's deadline; returns its start and new end.
  virtual Result<StartedSandbox> SetTimeout(const std::string& sandbox_id, int64_t end_at_unix_ms, Deadline deadline);
  // Commands (command_types.h). The stream starts `spec` (or attaches to
  // `command_id` when spec is null) and lives until the command's exit has
  // been read or Cancel(); errors surface through Read() == false + Finish().
  // Defaults answer kFailedPrecondition so older fakes keep compiling.
  virtual Result<std::unique_ptr<CommandStream>> OpenCommandStream(const std::string& sandbox_id,
                                                                   const CommandSpec* spec,
                                                                   const std::string& command_id);
  // The same stream without a thread per stream (command_types.h). The
  // default runs OpenCommandStream's blocking stream on two threads of its
  // own (for clients without an asynchronous transport, e.g. test fakes);
  // the gRPC client overrides it with a callback reactor.
  virtual Result<std::shared_ptr<AsyncCommandStream>> OpenCommandStreamAsync(const std::string& sandbox_id,
                                                                             const CommandSpec* spec,
                                                                             const std::string& command_id);
  // Starts a detached command and returns at once.
  virtual Result<CommandInfo> StartCommand(const std::string& sandbox_id, const CommandSpec& spec, Deadline deadline);
  virtual Result<std::vector<CommandInfo>> ListCommands(const std::string& sandbox_id, Deadline deadline);
  // signal 0 = SIGKILL.
  virtual Result<CommandInfo> KillCommand(const std::string& sandbox_id, const std::string& command_id, int signal,
                                          Deadline deadline);
  // Waits until the command ended or `wait` passed; its info either way.
  virtual Result<CommandInfo> WaitCommand(const std::string& sandbox_id, const std::string& command_id,
                                          std::chrono::milliseconds wait, Deadline deadline);
  // Files. Defaults answer kFailedPrecondition (a client without file support).
  virtual Result<int64_t> UploadFile(const std::string& sandbox_id, const std::string& path, uint32_t mode,
                                     const ChunkSource& next, Deadline deadline);
  virtual Status DownloadFile(const std::string& sandbox_id, const std::string& path, const DownloadSink& sink,
                              Deadline deadline);
  virtual Result<FileListing> ListFiles(const std::string& sandbox_id, const std::string& path, Deadline deadline);
  virtual Status MakeDirectory(const std::string& sandbox_id, const std::string& path, bool parents, uint32_t mode,
                               Deadline deadline);
  virtual Status RemoveFile(const std::string& sandbox_id, const std::string& path, bool recursive,
                            Deadline deadline);
};

inline bool WorkerClient::ExecAsync(const std::string&, const ExecCommand&, Deadline,
                                    std::function<void(Result<ExecOutcome>)>) {
  return false;
}
inline Result<CheckpointSaved> WorkerClient::Checkpoint(const std::string&, const std::string&, Deadline) {
  return MakeError(ErrorCode::kFailedPrecondition, "this worker cannot save checkpoints");
}
inline Status WorkerClient::DeleteCheckpoint(const std::string&, Deadline) {
  return MakeError(ErrorCode::kFailedPrecondition, "this worker cannot delete checkpoints");
}
inline Result<StartedSandbox> WorkerClient::SetTimeout(const std::string&, int64_t, Deadline) {
  return MakeError(ErrorCode::kFailedPrecondition, "this worker cannot change timeouts");
}

class WorkerConnector {
 public:
  virtual ~WorkerConnector() = default;
  // A client for the worker at `address` (connections are made lazily; this
  // never blocks on the network).
  virtual std::shared_ptr<WorkerClient> Connect(const std::string& worker_id, const std::string& address) = 0;
};

}  // namespace osb::controlplane
