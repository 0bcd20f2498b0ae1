// Store: the control plane's persistent state behind one interface, with two
// real backends chosen by URL:
//   sqlite:///abs/path/osb.db      embedded (WAL, foreign keys, busy timeout)
//   postgresql://user@host:port/db  (also postgres://)
// Both apply the same versioned migrations (store/migrations.h) at open, so
// behaviour is identical; the test suite runs against both.
//
// The store is deliberately dumb: it persists rows and enforces uniqueness and
// referential integrity; validation, encryption and merging live in
// src/controlplane. Secret values are only ever handled as ciphertext here.
//
// Errors: kNotFound (row missing, or belongs to another org), kAlreadyExists
// (a unique name is taken), kFailedPrecondition (a referenced row blocks a
// delete), kUnavailable/kInternal (database failure; message never contains
// row data such as ciphertexts).
// Thread safety: every method may be called concurrently from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace osb::store {

std::string NowRfc3339();  // (documented below)

struct Org {
  std::string id;
  std::string name;
  std::string created_at;  // RFC 3339 UTC
};

inline constexpr const char* kScopeAdmin = "admin";      // everything, including key management
inline constexpr const char* kScopeSandbox = "sandbox";  // sandboxes, read projects (controlplane/auth.h)

struct ApiKeyRow {
  std::string key_hash;  // SHA-256 hex of the key (the key itself is never stored)
  std::string org_id;
  std::string label;
  std::string created_at;
  std::string scope = kScopeAdmin;        // kScopeAdmin | kScopeSandbox (keys from before v4: admin)
  std::optional<std::string> expires_at;  // RFC 3339 UTC, Rfc3339Ms format; nullopt = never
};

struct Project {
  std::string id;
  std::string org_id;
  std::string name;
  std::string template_id;
  int cpu_count = 1;
  int memory_mb = 512;
  int disk_mb = 1024;  // writable disk of its image sandboxes
  int timeout_sec = 300;
  std::vector<std::string> egress_allowlist;
  std::vector<std::string> secret_group_ids;  // attached org groups, in resolution order
  std::string own_group_id;                   // the group holding the project's own secrets
  std::string created_at;
  std::string updated_at;
};

struct SecretGroup {
  std::string id;
  std::string org_id;
  std::string name;
  std::optional<std::string> project_id;  // set for a project's own group
  std::string created_at;
  std::string updated_at;
};

// One stored secret. `ciphertext` is the keyring output (binary); it is empty
// in results of ListSecrets(…, /*with_ciphertext=*/false).
struct SecretRow {
  std::string org_id;
  std::string group_id;
  std::string name;
  std::string ciphertext;
  std::string key_id;
  std::vector<std::string> allowed_hosts;
  std::string created_at;
  std::string updated_at;
  // Secret kinds (migration 8, common/secret_kinds.h): "value" or a signing
  // kind whose material JSON is the ciphertext's plaintext.
  std::string kind = "value";
  std::string public_material = {};      // non-secret material fields, JSON object text ("" = none)
  std::string allowed_requests = "[]";   // JSON array of {host, methods, pathPrefix}
  std::string on_disallowed_request = "seal";  // "seal" | "refuse"
};

// A registered worker host (control plane <-> worker scheduling). Liveness
// lives here, not in any one control-plane process, so every replica sees
// every worker whichever replica it heartbeats to.
struct WorkerRow {
  std::string id;
  std::string address;         // gRPC HOST:PORT the control plane dials
  int capacity = 0;            // most sandboxes at once
  std::string last_heartbeat;  // RFC 3339 UTC (fixed width: compares as text)
  int cpu_count = 0;           // CPUs it offers to sandboxes; 0 = not limited
  int memory_mb = 0;           // memory it offers to sandboxes; 0 = not limited
  std::string registered_at;   // last registration (set to last_heartbeat if empty)
  // Load, filled by ListWorkers: sandboxes running or being created on it,
  // and the CPUs and memory they were given.
  int sandboxes = 0;
  int cpu_used = 0;
  int memory_used_mb = 0;
};

// Limits checked by ReserveSandbox in the same transaction as the insert.
struct PlacementLimits {
  std::string fresh_since;         // the worker's last heartbeat must be >= this (RFC 3339)
  int org_max_sandboxes = 0;       // running + creating sandboxes per org; 0 = unlimited
  int64_t org_max_memory_mb = 0;   // their total memoryMB per org; 0 = unlimited
  // With sandbox.template_name set: the digest the caller resolved that
  // template to; the template must still name it (else kConflict).
  std::string template_digest;
};

// A sandbox as the control plane tracks it. `config` is the resolved
// configuration as JSON (no secret values, no env values).
struct SandboxRow {
  std::string id;
  std::string org_id;
  std::optional<std::string> project_id;
  std::string worker_id;
  // "creating" (reserved on its worker, counts as load), "running",
  // "stopped", or "lost" (its worker stopped heartbeating).
  std::string status;
  std::string config;
  std::string created_at;
  std::optional<std::string> ended_at;
  int cpu_count = 0;   // resources it holds on its worker
  int memory_mb = 0;
  std::string metadata = "{}";  // JSON object of strings, set at create (migration 7)
  // The org's image template it was created from (migration 13), empty when
  // its templateID names no template of the org (base, a worker-local image).
  // While the sandbox holds it (creating, running, hibernated, waking),
  // DeleteTemplate refuses; ReserveSandbox checks the template still exists.
  std::string template_name;

  bool operator==(const SandboxRow&) const = default;
};

// A checkpoint (issue 14): the saved files of a sandbox live on its worker
// (<state-dir>/checkpoints/<id>.state); the store keeps where and what.
// `config` is the sandbox's resolved config as JSON: template, cpu, memory,
// timeout, plaintext envs, egress allowlist. Never a secret value or token.
struct CheckpointRow {
  std::string id;
  std::string org_id;
  std::string sandbox_id;
  std::optional<std::string> project_id;
  std::string worker_id;
  std::string kind;  // "user" (API) or "hibernate" (held by a hibernated sandbox)
  std::string config;
  int64_t size_bytes = 0;
  std::string created_at;
};

// An imported image template of an org (issue 14, migration 9): the
// verified tarball lives in the control plane's data dir, content-addressed
// by `digest` (the image's config digest, "sha256:<hex>"); the store keeps
// the org's name for it. Names are unique per org.
struct TemplateRow {
  std::string id;
  std::string org_id;
  std::string name;
  std::string digest;
  int64_t size_bytes = 0;  // the stored tarball
  std::string created_at;
  bool operator==(const TemplateRow&) const = default;
};

// oauth2-refresh coordination (issue 16, migration 12): one row per
// (project, secret name). Ciphertexts are keyring output made by the
// control plane (the store never sees a token in clear).
struct OAuthTokenRow {
  std::string project_id;
  std::string name;
  std::string material_fp;         // the secret's material generation
  int64_t generation = 0;          // bumped by every lease grant: the lease id
  std::string access_ciphertext;   // "" = no access token yet
  std::string expires_at;          // the access token's expiry (Rfc3339Ms), "" = none
  std::string refresh_ciphertext;  // "" = the secret's own refresh token (never rotated)
  std::string lease_holder;        // worker id refreshing now, "" = nobody
  std::string lease_until;         // Rfc3339Ms
};
struct OAuthAcquire {
  OAuthTokenRow row;
  bool leased = false;  // the lease was granted to the caller (row.generation is its id)
};

class Store {
 public:
  virtual ~Store() = default;

  // Schema version after migrations (for `osb migrate` output).
  virtual Result<int> SchemaVersion() = 0;

  // ---- orgs and API keys (only SHA-256 hex of a key is ever stored) ----
  // Returns the org with that name, creating it if missing.
  virtual Result<Org> EnsureOrg(const std::string& name) = 0;
  // Adds the key hash for the org with its scope and expiry (expires_at in
  // Rfc3339Ms format); a no-op if that hash already exists for it.
  virtual Status AddApiKey(const std::string& org_id, const std::string& key_hash, const std::string& label,
                           const std::string& scope = kScopeAdmin,
                           const std::optional<std::string>& expires_at = std::nullopt) = 0;
  // The org owning the key hash, or kNotFound.
  virtual Result<std::string> OrgIdForKeyHash(const std::string& key_hash) = 0;
  // The key row (org, scope, expiry) for the hash, or kNotFound.
  virtual Result<ApiKeyRow> GetApiKey(const std::string& key_hash) = 0;
  // The org's keys (hashes and labels), oldest first.
  virtual Result<std::vector<ApiKeyRow>> ListApiKeys(const std::string& org_id) = 0;
  // Deletes the org's key with that hash: kNotFound if there is none,
  // kConflict if it is the org's last admin key that has not expired at
  // `now` (the org could no longer manage its keys), both checked in the
  // same transaction as the delete.
  virtual Status DeleteApiKey(const std::string& org_id, const std::string& key_hash,
                              const std::string& now = NowRfc3339()) = 0;

  // ---- projects ----
  // Inserts the project, its own secret group and its attachments in one
  // transaction. Fills in own_group_id. kAlreadyExists if the name is taken.
  virtual Result<Project> CreateProject(Project project) = 0;
  // By id, else by name, within the org.
  virtual Result<Project> GetProject(const std::string& org_id, const std::string& id_or_name) = 0;
  virtual Result<std::vector<Project>> ListProjects(const std::string& org_id) = 0;
  // Read-modify-write in one transaction (the row is locked, so concurrent
  // partial updates never lose each other's fields): loads the project by id,
  // calls `mutate` on it (which must not call the store), then writes every
  // mutable field and the attachments (id/org/created_at are kept).
  // `mutate` returning an error aborts the update with that error.
  virtual Result<Project> UpdateProject(const std::string& org_id, const std::string& project_id,
                                        const std::function<Status(Project&)>& mutate) = 0;
  // Deletes the project, its own group and that group's secrets.
  virtual Status DeleteProject(const std::string& org_id, const std::string& project_id) = 0;

  // ---- org-level secret groups (project-owned groups are not listed) ----
  virtual Result<SecretGroup> CreateGroup(SecretGroup group) = 0;
  virtual Result<SecretGroup> GetGroup(const std::string& org_id, const std::string& id_or_name) = 0;
  virtual Result<SecretGroup> GetGroupById(const std::string& group_id) = 0;  // any kind
  virtual Result<std::vector<SecretGroup>> ListGroups(const std::string& org_id) = 0;
  virtual Result<SecretGroup> RenameGroup(const std::string& org_id, const std::string& group_id,
                                          const std::string& new_name,
                                          const std::string& updated_at) = 0;
  // kFailedPrecondition naming a project if the group is attached to one.
  virtual Status DeleteGroup(const std::string& org_id, const std::string& group_id) = 0;

  // ---- secrets ----
  // Creates or replaces (group_id, name) atomically (an upsert): concurrent
  // writers of one secret leave exactly one of their values. created_at is
  // kept on replace. Returns the stored metadata.
  virtual Result<SecretRow> PutSecret(const SecretRow& row) = 0;
  virtual Result<std::vector<SecretRow>> ListSecrets(const std::string& group_id,
                                                     bool with_ciphertext) = 0;
  virtual Status DeleteSecret(const std::string& group_id, const std::string& name) = 0;
  // Every secret of every org, with ciphertext and org_id (for osb rewrap).
  virtual Result<std::vector<SecretRow>> ListAllSecrets() = 0;
  // Compare-and-swap of one row's ciphertext, its own transaction: replaces
  // only if the row still holds `old_ciphertext`. Returns whether it did.
  virtual Result<bool> ReplaceCiphertext(const std::string& group_id, const std::string& name,
                                         const std::string& old_ciphertext,
                                         const std::string& new_ciphertext,
                                         const std::string& new_key_id) = 0;
  // ---- workers and sandboxes ----
  // Creates or updates the worker (address, capacity, CPUs, memory, heartbeat).
  virtual Status UpsertWorker(const WorkerRow& worker) = 0;
  virtual Status TouchWorker(const std::string& worker_id, const std::string& heartbeat) = 0;  // kNotFound
  // Every worker with its load (see WorkerRow), by id.
  virtual Result<std::vector<WorkerRow>> ListWorkers() = 0;
  virtual Status InsertSandbox(const SandboxRow& sandbox) = 0;
  // Inserts `sandbox` (normally status "creating") on sandbox.worker_id only
  // if, in the same transaction as the insert: the worker's heartbeat is at
  // or after limits.fresh_since, the worker has room for one more sandbox of
  // its cpu_count and memory_mb, and the org stays within its limits.
  // Concurrent reservations never overfill a worker or an org: PostgreSQL
  // locks the org's row then the worker's row (FOR UPDATE; always in that
  // order, one worker per transaction), SQLite holds its write lock.
  // With sandbox.template_name set, the org's template of that name must
  // still exist with limits.template_digest, checked in the same transaction
  // (PostgreSQL: FOR SHARE on the template's row, which DeleteTemplate locks
  // FOR UPDATE), so a concurrent delete either waits for the reservation
  // and then refuses, or wins and the reservation fails.
  // kUnavailable: the worker is unknown, stale or full (try another one);
  // kResourceExhausted: an org limit (message names it); kConflict: the
  // template was deleted (or now names another image) meanwhile.
  virtual Status ReserveSandbox(const SandboxRow& sandbox, const PlacementLimits& limits) = 0;
  // "creating" -> "running" with its final config. kNotFound if it is no
  // longer "creating" (e.g. marked lost meanwhile).
  virtual Status ActivateSandbox(const std::string& id, const std::string& config) = 0;
  // One conditional UPDATE: every "running" or "creating" sandbox whose
  // worker's last heartbeat is before `stale_before`, and every "creating"
  // one created before `creating_before` (its creator died), becomes "lost"
  // with ended_at = `now`. Returns the rows it changed: across concurrent
  // callers (replicas) each sandbox is returned exactly once.
  virtual Result<std::vector<SandboxRow>> MarkLostSandboxes(const std::string& stale_before,
                                                            const std::string& creating_before,
                                                            const std::string& now) = 0;
  // Org-scoped (another org's sandbox is kNotFound).
  virtual Result<SandboxRow> GetSandbox(const std::string& org_id, const std::string& id) = 0;
  virtual Result<std::vector<SandboxRow>> ListSandboxes(const std::string& org_id) = 0;
  // Running sandboxes, optionally only those on one worker / of one project.
  virtual Result<std::vector<SandboxRow>> ListRunningSandboxes(
      const std::optional<std::string>& worker_id, const std::optional<std::string>& project_id) = 0;
  // Sandboxes on one worker with one status (e.g. "lost").
  virtual Result<std::vector<SandboxRow>> ListWorkerSandboxes(const std::string& worker_id,
                                                              const std::string& status) = 0;
  // Marks a running sandbox stopped (no-op if it already is); kNotFound if unknown.
  virtual Status StopSandbox(const std::string& id, const std::string& ended_at) = 0;
  // Forgets the sandbox (after DELETE it is a 404); kNotFound if unknown.
  virtual Status DeleteSandbox(const std::string& id) = 0;

  // ---- checkpoints and lifetime (issue 14, migration 5) ----
  // Conditional: sets status and config only if the sandbox's status is
  // `from` (one UPDATE); kNotFound otherwise. ended_at is cleared when the
  // new status is "running" or "creating".
  virtual Status TransitionSandbox(const std::string& id, const std::string& from, const std::string& to,
                                   const std::string& config) = 0;
  virtual Status InsertCheckpoint(const CheckpointRow& checkpoint) = 0;
  // Org-scoped: another org's checkpoint is kNotFound.
  virtual Result<CheckpointRow> GetCheckpoint(const std::string& org_id, const std::string& id) = 0;
  // The org's checkpoints of kind "user", oldest first; only one sandbox's
  // when `sandbox_id` is set.
  virtual Result<std::vector<CheckpointRow>> ListCheckpoints(const std::string& org_id,
                                                             const std::optional<std::string>& sandbox_id) = 0;
  virtual Status DeleteCheckpoint(const std::string& id) = 0;  // kNotFound if unknown

  // ---- image templates (issue 14, migration 9) ----
  // kAlreadyExists if the org already has a template of that name.
  virtual Status InsertTemplate(const TemplateRow& row) = 0;
  // Org-scoped by name: another org's template is kNotFound.
  virtual Result<TemplateRow> GetTemplate(const std::string& org_id, const std::string& name) = 0;
  virtual Result<std::vector<TemplateRow>> ListTemplates(const std::string& org_id) = 0;  // by name
  // Deletes the org's template in one transaction with the check that no
  // sandbox of the org holds it (SandboxRow::template_name, status creating,
  // running, hibernated or waking): kConflict naming such a sandbox;
  // kNotFound if the org has no template of that name. Returns the deleted row.
  virtual Result<TemplateRow> DeleteTemplate(const std::string& org_id, const std::string& name) = 0;
  // How many templates (of any org) name this digest: the stored tarball is
  // removed when the last one goes, and workers may fetch only known digests.
  virtual Result<int> CountTemplatesWithDigest(const std::string& digest) = 0;

  // ---- oauth2-refresh coordination (issue 16, migration 12) ----
  // One transaction holding the row (PostgreSQL: SELECT ... FOR UPDATE;
  // SQLite: its write lock), then a conditional UPDATE on the generation:
  // creates the row if missing; resets it (tokens and lease) when its
  // material_fp is not `material_fp` (the secret was set again); then
  //   - an access token expiring after `valid_after`: returned, no lease;
  //   - a lease of another holder running past `now`: returned, no lease
  //     (the caller waits and asks again);
  //   - else the lease goes to `worker_id` until `lease_until` and the
  //     generation is bumped (leased = true).
  // Across replicas exactly one caller holds a lease at a time.
  virtual Result<OAuthAcquire> AcquireOAuthLease(const std::string& project_id, const std::string& name,
                                                 const std::string& material_fp, const std::string& worker_id,
                                                 const std::string& now, const std::string& valid_after,
                                                 const std::string& lease_until) = 0;
  // Stores the refresh's outcome only while `worker_id` still holds lease
  // `generation` (no other grant happened since, even past lease_until):
  // the access token and its expiry, the rotated refresh token when not
  // empty; the lease is cleared. Returns whether it stored them.
  virtual Result<bool> CompleteOAuthLease(const std::string& project_id, const std::string& name, int64_t generation,
                                          const std::string& worker_id, const std::string& access_ciphertext,
                                          const std::string& expires_at, const std::string& refresh_ciphertext) = 0;
  // Gives the lease back (a failed refresh) if still held; whether it was.
  virtual Result<bool> ReleaseOAuthLease(const std::string& project_id, const std::string& name, int64_t generation,
                                         const std::string& worker_id) = 0;
  // The row, or kNotFound (tests, tools).
  virtual Result<OAuthTokenRow> GetOAuthToken(const std::string& project_id, const std::string& name) = 0;
  // Every row, by project and name (osb rewrap).
  virtual Result<std::vector<OAuthTokenRow>> ListAllOAuthTokens() = 0;
  // Compare-and-swap of one row's two ciphertexts (osb rewrap), its own
  // transaction: replaces them only if the row still holds exactly
  // `old_access` and `old_refresh` ("" = NULL, kept NULL). A refresh or a
  // reset in between makes it a no-op. Returns whether it replaced them;
  // the lease, expiry and generation are left alone.
  virtual Result<bool> ReplaceOAuthCiphertexts(const std::string& project_id, const std::string& name,
                                               const std::string& old_access, const std::string& old_refresh,
                                               const std::string& new_access, const std::string& new_refresh) = 0;
};

// Opens the backend named by `url`, creating the SQLite file if missing, and
// applies pending migrations. kInvalidArgument for an unknown scheme.
Result<std::unique_ptr<Store>> OpenStore(const std::string& url);

// Applies pending migrations only (what `osb migrate` does); returns the
// resulting schema version.
Result<int> MigrateStore(const std::string& url);

// Current time as RFC 3339 UTC with millisecond precision.
std::string NowRfc3339();
// The same fixed-width format for any time (strings compare like the times).
std::string Rfc3339Ms(std::chrono::system_clock::time_point t);

// A new random identifier: prefix + "_" + 24 lower-case hex chars.
std::string NewId(const std::string& prefix);

}  // namespace osb::store
