// SandboxService: sandboxes as the control plane sees them. Create resolves
// the request (Resolver), reserves room on the least-loaded healthy worker
// in the store (WorkerPool::Place: capacity and per-org limits checked in
// the insert's transaction, so replicas never overfill a worker), sends the
// worker the resolved config and the decrypted secrets through its
// WorkerClient (the only place values travel), and marks the sandbox running.
// Exec/Delete forward to the sandbox's worker; ExecAsync runs an exec on a
// bounded executor (LongCalls) so it never holds a REST handler thread.
// Secret changes are pushed to the running sandboxes of every affected
// project, in parallel per worker under one deadline (live refresh: tokens
// stay, values change). SweepLost marks the sandboxes of workers that stopped
// heartbeating as "lost" — any replica may run it; each sandbox is marked once.
//
// Errors: kInvalidArgument (a field, named), kNotFound (unknown sandbox or
// project, or another org's), kUnavailable (no healthy worker → 503; the
// worker unreachable), kResourceExhausted (an org limit → 429), worker errors.
// Never puts a secret value in an error or a log line.
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "controlplane/long_calls.h"
#include "controlplane/resolution.h"
#include "controlplane/secrets.h"
#include "controlplane/worker_client.h"
#include "controlplane/worker_pool.h"
#include "store/store.h"

namespace osb::controlplane {

struct SandboxView {
  std::string id;
  std::string status;  // "creating" | "running" | "stopped" | "lost"
  std::optional<std::string> project_id;
  std::string template_id;
  int cpu_count = 0;
  int memory_mb = 0;
  int disk_mb = 0;
  int timeout_sec = 0;
  std::vector<std::string> egress_allowlist;
  std::string worker_id;
  std::string started_at;  // RFC 3339
  std::string end_at;      // when the sandbox's timeout kills it
  std::optional<std::string> ended_at;
};

// The secrets a restarted worker needs for one of its running sandboxes.
struct SandboxSecrets {
  std::string sandbox_id;
  std::vector<PlainSecret> secrets;
  std::vector<std::string> egress_allowlist;
};

struct SandboxLimits {
  int org_max_sandboxes = 100;          // running + creating, per org; 0 = unlimited
  int64_t org_max_memory_mb = 262144;   // their total memoryMB, per org; 0 = unlimited
  LongCallLimits long_calls;            // exec: threads, per-org concurrency, queue
  std::chrono::milliseconds refresh_deadline{10000};  // a secret change's push, all workers
  std::chrono::seconds create_deadline{60};
  std::chrono::seconds call_deadline{15};
};

class SandboxService {
 public:
  SandboxService(store::Store& store, Resolver& resolver, WorkerPool& workers, SandboxLimits limits = {})
      : store_(store), resolver_(resolver), workers_(workers), limits_(limits), long_calls_(limits.long_calls) {}

  Result<SandboxView> Create(const std::string& org_id, const SandboxRequest& request);
  Result<SandboxView> Get(const std::string& org_id, const std::string& id);
  Result<std::vector<SandboxView>> List(const std::string& org_id);
  // Destroys it on its worker (if still running) and forgets it: a later
  // GET is a 404. Sandboxes that ended on their own stay listed as
  // "stopped" (or "lost") until deleted.
  Status Delete(const std::string& org_id, const std::string& id);
  // Blocks for the command's lifetime.
  Result<ExecOutcome> Exec(const std::string& org_id, const std::string& id, const ExecCommand& cmd);
  // Runs Exec on the long-call executor and calls `done` there with its
  // result. kResourceExhausted (→ 429) at once, without calling `done`, when
  // the org already runs its limit of long calls.
  Status ExecAsync(const std::string& org_id, const std::string& id, ExecCommand cmd,
                   std::function<void(Result<ExecOutcome>)> done);

  // SecretService listener: pushes the new value (or the removal) to every
  // running sandbox of the affected projects; reports how many got it and
  // which could not be reached before the deadline. Never throws.
  RefreshReport OnSecretChange(const SecretChange& change);

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
  // longer reports as stopped (timeout, crash, destroy); destroys (in the
  // background) those it still runs that were marked lost meanwhile.
  void ReconcileWorker(const std::string& worker_id, const std::vector<std::string>& running_ids);
  // Secrets of the worker's running sandboxes, for a restarted worker.
  Result<std::vector<SandboxSecrets>> SecretsForWorker(const std::string& worker_id,
                                                       const std::vector<std::string>& ids);
  // Marks every sandbox of a worker whose heartbeat is older than the stale
  // window (and every reservation whose creator died) as "lost". Returns the
  // ids this call marked (each is marked by exactly one caller).
  Result<std::vector<std::string>> SweepLost();

 private:
  // Pushes the effective value (or removal) of each name to every running
  // sandbox of the project; one resolution for all names.
  RefreshReport RefreshNames(const std::string& org_id, const std::string& project_id,
                             const std::vector<std::string>& names);
  Deadline After(std::chrono::milliseconds d) const;

  store::Store& store_;
  Resolver& resolver_;
  WorkerPool& workers_;
  const SandboxLimits limits_;
  LongCalls long_calls_;  // last: its destructor waits for calls that use the members above
};

}  // namespace osb::controlplane
