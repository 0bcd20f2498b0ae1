// SandboxService: sandboxes as the control plane sees them. Create resolves
// the request (Resolver), reserves room on the least-loaded healthy worker
// in the store (WorkerPool::Place: capacity and per-org limits checked in
// the insert's transaction, so replicas never overfill a worker), sends the
// worker the resolved config and the decrypted secrets through its
// WorkerClient (the only place values travel), and marks the sandbox running.
// Exec/Delete forward to the sandbox's worker; ExecAsync runs an exec as an
// asynchronous worker call, admitted under the org's cap (LongCalls), so it
// holds neither a REST handler thread nor an executor thread.
// Secret changes are pushed to the running sandboxes of every affected
// project, in parallel per worker under one deadline (live refresh: tokens
// stay, values change), on a bounded refresh executor: the caller's thread
// only starts the push, and a RefreshTicket reports the outcome when the
// last worker's task ends (each task stops at the deadline, so the report
// comes within it even if a worker hangs). SweepLost marks the sandboxes of workers that stopped
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

#include "common/memo_cache.h"
#include "common/result.h"
#include "controlplane/long_calls.h"
#include "controlplane/resolution.h"
#include "controlplane/secrets.h"
#include "controlplane/validation.h"
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
  // Kept in the store's config, never in API views: the plaintext envs
  // (a checkpoint's config needs them) and, while hibernated, the checkpoint
  // holding its files.
  std::map<std::string, std::string> envs;
  std::string hibernate_checkpoint;

  std::map<std::string, std::string> metadata;

  bool operator==(const SandboxView&) const = default;
};

// A checkpoint as the API shows it (no env values: their names only).
struct CheckpointView {
  std::string id;
  std::string sandbox_id;
  std::optional<std::string> project_id;
  std::string template_id;
  int cpu_count = 0;
  int memory_mb = 0;
  int timeout_sec = 0;
  std::vector<std::string> egress_allowlist;
  std::vector<std::string> env_names;
  // An image sandbox's checkpoint: the image and disk a restore uses.
  std::string template_digest;
  int disk_mb = 0;
  int64_t size_bytes = 0;
  std::string created_at;
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
  size_t refresh_threads = 32;                        // the push's executor: one task per worker at a time
  std::chrono::seconds create_deadline{60};
  std::chrono::seconds call_deadline{15};
  // --max-sandbox-lifetime: no sandbox's timeout (at create, extend or wake)
  // may end it later than this after its start.
  int max_lifetime_sec = kDefaultMaxSandboxLifetimeSec;
  std::chrono::seconds checkpoint_deadline{300};
};

class SandboxService {
 public:
  // Queued refresh tasks (one per worker per change) beyond which a
  // worker's sandboxes are reported as not refreshed at once.
  static constexpr size_t kMaxRefreshTasks = 65536;
  static constexpr size_t kMaxCachedViews = 20000;

  SandboxService(store::Store& store, Resolver& resolver, WorkerPool& workers, SandboxLimits limits = {})
      : store_(store),
        resolver_(resolver),
        workers_(workers),
        limits_(limits),
        long_calls_(limits.long_calls),
        refresh_calls_({limits.refresh_threads, kMaxRefreshTasks, kMaxRefreshTasks}) {}

  Result<SandboxView> Create(const std::string& org_id, const SandboxRequest& request);
  // Image templates: the digest of the org's template of a name (nullopt:
  // not a template of the org; the worker resolves the name itself). When
  // set, Create sends the digest (SandboxSpec::template_digest).
  using TemplateDigests =
      std::function<Result<std::optional<std::string>>(const std::string& org_id, const std::string& name)>;
  void SetTemplateDigests(TemplateDigests f) { template_digests_ = std::move(f); }
  Result<SandboxView> Get(const std::string& org_id, const std::string& id);
  Result<std::vector<SandboxView>> List(const std::string& org_id);
  // Destroys it on its worker (if still running) and forgets it: a later
  // GET is a 404. Sandboxes that ended on their own stay listed as
  // "stopped" (or "lost") until deleted.
  Status Delete(const std::string& org_id, const std::string& id);
  // Blocks for the command's lifetime.
  Result<ExecOutcome> Exec(const std::string& org_id, const std::string& id, const ExecCommand& cmd);
  // Exec without holding a thread for the command's lifetime, in two steps.
  // PrepareExec (blocking briefly: the store) runs on the caller's thread
  // (a REST handler thread): the org's exec cap (kResourceExhausted → 429
  // beyond it), then the sandbox (kNotFound, kConflict when not running)
  // and its worker's client. The starter it returns never blocks (it may
  // run on an I/O thread): it starts the worker call, asynchronous
  // (WorkerClient::ExecAsync, gRPC's callback API), and `done` runs once,
  // on the client's thread, when the command ended or the deadline (its
  // timeout + 30 s) passed. A client without async exec runs Exec on the
  // long-call executor instead. Dropping an unstarted starter frees its
  // admission.
  using ExecDone = std::function<void(Result<ExecOutcome>)>;
  using ExecStarter = std::function<void(ExecDone)>;
  Result<ExecStarter> PrepareExec(const std::string& org_id, const std::string& id, ExecCommand cmd);
  // Both steps at once: kResourceExhausted (the cap) is returned without
  // calling `done`; every other outcome goes to `done`.
  Status ExecAsync(const std::string& org_id, const std::string& id, ExecCommand cmd, ExecDone done);

  // SecretService listener: starts pushing the new value (or the removal)
  // to every running sandbox of the affected projects on the refresh
  // executor and returns at once; completes `ticket` with how many got it
  // and which could not be reached before the deadline. Never throws.
  void OnSecretChange(const SecretChange& change, std::shared_ptr<RefreshTicket> ticket);

  // ProjectService hook: a project's attached groups changed. Every secret
  // name in those groups is re-resolved for the project's running sandboxes
  // and pushed (the value that now wins, or a removal: a detached group's
  // tokens stay sealed from then on), in the background. Failures are logged.
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

  // ---- checkpoints and lifetime (issue 14) ----
  // Create() with request.from_checkpoint restores that checkpoint on the
  // worker that holds it, with fresh tokens for the project's current
  // secret values (the warm-fork path when called many times).
  // Saves a running sandbox's files + resolved config. kConflict if it is
  // not running.
  Result<CheckpointView> CreateCheckpoint(const std::string& org_id, const std::string& sandbox_id);
  // The org's checkpoints (of one sandbox when set), oldest first.
  Result<std::vector<CheckpointView>> ListCheckpoints(const std::string& org_id,
                                                      const std::optional<std::string>& sandbox_id);
  // kNotFound if unknown, another org's, or (when set) not of `sandbox_id`.
  Status DeleteCheckpoint(const std::string& org_id, const std::string& checkpoint_id,
                          const std::optional<std::string>& sandbox_id);
  // Sets a running sandbox's deadline to now + timeout_sec, bounded by its
  // start + max_lifetime_sec (kInvalidArgument naming timeoutSec).
  Result<SandboxView> SetTimeout(const std::string& org_id, const std::string& id, int timeout_sec);
  // Checkpoint, then destroy on the worker (processes, cgroup, netns, uid
  // range, proxy session): status "hibernated", nothing held on the worker.
  Result<SandboxView> Hibernate(const std::string& org_id, const std::string& id);
  // Restores a hibernated sandbox under the same id on the worker holding
  // its checkpoint, with fresh tokens for the current secret values.
  Result<SandboxView> Wake(const std::string& org_id, const std::string& id);
  // Runs `fn` on the long-call executor (kResourceExhausted at once when the
  // org is at its cap): checkpoint, hibernate and wake never hold a REST
  // handler thread.
  Status RunLong(const std::string& org_id, std::function<void()> fn);
  // For calls that reach into a running sandbox (files): the client of its
  // worker (kNotFound unknown/other org, kConflict not running), and the
  // same long-call executor as ExecAsync (kResourceExhausted over a cap).
  Result<std::shared_ptr<WorkerClient>> RunningClient(const std::string& org_id, const std::string& id);
  Status SubmitLongCall(const std::string& org_id, std::function<void()> call);

 private:
  TemplateDigests template_digests_;
  Result<store::CheckpointRow> SaveCheckpoint(const std::string& org_id, const store::SandboxRow& row,
                                              const std::string& kind);
  // Deletes a checkpoint's archive on its worker and its row; logs failures.
  void DropCheckpoint(const std::string& org_id, const std::string& checkpoint_id);
  struct Fanout;
  // On the refresh executor: pushes the effective value (or removal) of
  // each name to every running sandbox of the project, one task per worker
  // (one resolution for all names); each task reports to `fanout`.
  void RefreshNames(const std::string& org_id, const std::string& project_id, const std::vector<std::string>& names,
                    const std::shared_ptr<Fanout>& fanout, Deadline deadline);
  // Runs the push of `names` in every project on the refresh executor.
  void StartRefresh(const std::string& org_id, std::vector<std::string> project_ids, std::vector<std::string> names,
                    std::shared_ptr<RefreshTicket> ticket);
  Deadline After(std::chrono::milliseconds d) const;

  store::Store& store_;
  Resolver& resolver_;
  WorkerPool& workers_;
  const SandboxLimits limits_;
  // Parsed views of listed rows (a row's config is JSON): a listing parses
  // only the rows that changed since the last one.
  MemoCache<store::SandboxRow, SandboxView> views_{kMaxCachedViews};
  LongCalls long_calls_;     // last two: their destructors wait for calls that use the members above
  LongCalls refresh_calls_;
};

}  // namespace osb::controlplane
