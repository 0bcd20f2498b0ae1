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
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
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
  int timeout_sec = 0;
  std::vector<std::string> egress_allowlist;
  std::map<std::string, std::string> envs;
  std::vector<PlainSecret> secrets;
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

class WorkerClient {
 public:
  virtual ~WorkerClient() = default;

  virtual Result<StartedSandbox> Create(const SandboxSpec& spec, Deadline deadline) = 0;
  virtual Status Destroy(const std::string& sandbox_id, Deadline deadline) = 0;
  // Blocks for the command's lifetime (callers run it off request threads).
  virtual Result<ExecOutcome> Exec(const std::string& sandbox_id, const ExecCommand& cmd, Deadline deadline) = 0;
  // Ids of the sandboxes the worker runs now.
  virtual Result<std::vector<std::string>> List(Deadline deadline) = 0;
  // Live refresh of one secret in one sandbox. Returns whether the sandbox
  // had a token for it (false: nothing to change there).
  virtual Result<bool> UpdateSecret(const std::string& sandbox_id, const PlainSecret& secret,
                                    Deadline deadline) = 0;
  virtual Result<bool> RemoveSecret(const std::string& sandbox_id, const std::string& name, Deadline deadline) = 0;
};

class WorkerConnector {
 public:
  virtual ~WorkerConnector() = default;
  // A client for the worker at `address` (connections are made lazily; this
  // never blocks on the network).
  virtual std::shared_ptr<WorkerClient> Connect(const std::string& worker_id, const std::string& address) = 0;
};

}  // namespace osb::controlplane
