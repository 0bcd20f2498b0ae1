// SandboxService: sandboxes as the control plane sees them. Create resolves
// the request (Resolver), picks the least-loaded healthy worker, sends it the
// resolved config and the decrypted secrets over gRPC (the only place values
// travel), and records the sandbox. Exec/Delete forward to the sandbox's
// worker. Secret changes are pushed to the running sandboxes of every
// affected project (live refresh: tokens stay, values change).
//
// Errors: kInvalidArgument (a field, named), kNotFound (unknown sandbox or
// project, or another org's), kUnavailable (no healthy worker → 503; the
// worker unreachable), worker errors mapped back from gRPC.
// Never puts a secret value in an error or a log line.
// Thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "controlplane/resolution.h"
#include "controlplane/secrets.h"
#include "controlplane/worker_pool.h"
#include "proto/worker.pb.h"
#include "store/store.h"

namespace osb::controlplane {

struct SandboxView {
  std::string id;
  std::string status;  // "running" | "stopped"
  std::optional<std::string> project_id;
  std::string template_id;
  int cpu_count = 0;
  int memory_mb = 0;
  int timeout_sec = 0;
  std::vector<std::string> egress_allowlist;
  std::string worker_id;
  std::string started_at;  // RFC 3339
  std::string end_at;      // when the sandbox's timeout kills it
  std::optional<std::string> ended_at;
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

class SandboxService {
 public:
  SandboxService(store::Store& store, Resolver& resolver, WorkerPool& workers)
      : store_(store), resolver_(resolver), workers_(workers) {}

  Result<SandboxView> Create(const std::string& org_id, const SandboxRequest& request);
  Result<SandboxView> Get(const std::string& org_id, const std::string& id);
  Result<std::vector<SandboxView>> List(const std::string& org_id);
  // Destroys it on its worker (if still running) and forgets it: a later
  // GET is a 404. Sandboxes that ended on their own stay listed as
  // "stopped" until deleted.
  Status Delete(const std::string& org_id, const std::string& id);
  Result<ExecOutcome> Exec(const std::string& org_id, const std::string& id, const ExecCommand& cmd);

  // SecretService listener: pushes the new value (or the removal) to every
  // running sandbox of the affected projects. Failures are logged (the
  // worker's next restart refetches); never thrown.
  void OnSecretChange(const SecretChange& change);

  // ProjectService hook: a project's attached groups changed. Every secret
  // name in those groups is re-resolved for the project's running sandboxes
  // and pushed (the value that now wins, or a removal: a detached group's
  // tokens stay sealed from then on). Failures are logged.
  void OnProjectGroupsChanged(const std::string& org_id, const std::string& project_id,
                              const std::vector<std::string>& group_ids);

  // Ends (destroys and forgets) every running sandbox of a project that is
  // about to be deleted. Failures are logged.
  void EndProjectSandboxes(const std::string& org_id, const std::string& project_id);

  // Worker callbacks.
  // Marks sandboxes the store thinks run on `worker_id` but the worker no
  // longer reports as stopped (timeout, crash, destroy).
  void ReconcileWorker(const std::string& worker_id, const std::vector<std::string>& running_ids);
  // Secrets of the worker's running sandboxes, for a restarted worker.
  Result<std::vector<v1::SandboxSecrets>> SecretsForWorker(const std::string& worker_id,
                                                           const std::vector<std::string>& ids);

 private:
  // Pushes the effective value (or removal) of each name to every running
  // sandbox of the project; one resolution for all names.
  void RefreshNames(const std::string& org_id, const std::string& project_id, const std::vector<std::string>& names);

  store::Store& store_;
  Resolver& resolver_;
  WorkerPool& workers_;
};

}  // namespace osb::controlplane
