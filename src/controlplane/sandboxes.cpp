#include "controlplane/sandboxes.h"

#include "controlplane/sandbox_metadata.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "crypto/random.h"

namespace osb::controlplane {

namespace {

using nlohmann::json;

// A reservation older than this lost its creator (a replica that died
// mid-create): SweepLost marks it lost so it stops counting as load.
constexpr auto kCreatingGrace = std::chrono::seconds(120);

std::string Rfc3339FromUnix(int64_t secs) {
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ConfigJson(const SandboxView& v) {
  json j{{"templateID", v.template_id},     {"cpuCount", v.cpu_count},
         {"memoryMB", v.memory_mb},         {"diskMB", v.disk_mb},
         {"timeoutSec", v.timeout_sec},
         {"egressAllowlist", v.egress_allowlist}, {"startedAt", v.started_at},
         {"endAt", v.end_at}};
  // Plaintext envs (never secrets): a checkpoint's config needs them.
  if (!v.envs.empty()) j["envs"] = v.envs;
  if (!v.hibernate_checkpoint.empty()) j["hibernateCheckpoint"] = v.hibernate_checkpoint;
  return j.dump();
}

// The resolved-config JSON that sandbox rows (ConfigJson) and checkpoint
// rows (CheckpointConfigJson + the worker's digest/disk) carry, parsed in
// one place; a field the JSON lacks stays empty (nullopt for numbers, so
// each reader keeps its own default). nullopt for a config that is not an
// object.
struct StoredConfig {
  std::string template_id, template_digest, end_at, hibernate_checkpoint;
  std::optional<std::string> started_at;
  std::optional<int> cpu_count, memory_mb, disk_mb, timeout_sec;
  std::optional<std::vector<std::string>> egress_allowlist;
  std::optional<std::map<std::string, std::string>> envs;
};

std::optional<StoredConfig> ParseStoredConfig(const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto number = [&j](const char* key) -> std::optional<int> {
    if (!j.contains(key)) return std::nullopt;
    return j.value(key, 0);
  };
  StoredConfig c;
  c.template_id = j.value("templateID", "");
  c.template_digest = j.value("templateDigest", "");
  if (j.contains("startedAt")) c.started_at = j.value("startedAt", "");
  c.end_at = j.value("endAt", "");
  c.hibernate_checkpoint = j.value("hibernateCheckpoint", "");
  c.cpu_count = number("cpuCount");
  c.memory_mb = number("memoryMB");
  c.disk_mb = number("diskMB");
  c.timeout_sec = number("timeoutSec");
  if (j.contains("egressAllowlist")) c.egress_allowlist = j.value("egressAllowlist", std::vector<std::string>{});
  if (j.contains("envs") && j["envs"].is_object()) c.envs = j["envs"].get<std::map<std::string, std::string>>();
  return c;
}

SandboxView ViewFromRow(const store::SandboxRow& row) {
  SandboxView v;
  v.id = row.id;
  v.status = row.status;
  v.project_id = row.project_id;
  v.worker_id = row.worker_id;
  v.ended_at = row.ended_at;
  if (auto c = ParseStoredConfig(row.config)) {
    v.template_id = c->template_id;
    v.cpu_count = c->cpu_count.value_or(0);
    v.memory_mb = c->memory_mb.value_or(0);
    v.disk_mb = c->disk_mb.value_or(0);
    v.timeout_sec = c->timeout_sec.value_or(0);
    v.egress_allowlist = c->egress_allowlist.value_or(std::vector<std::string>{});
    v.started_at = c->started_at.value_or(row.created_at);
    v.end_at = c->end_at;
    v.envs = c->envs.value_or(std::map<std::string, std::string>{});
    v.hibernate_checkpoint = c->hibernate_checkpoint;
  }
  const json m = json::parse(row.metadata, nullptr, false);
  if (m.is_object()) {
    for (const auto& [k, val] : m.items()) {
      if (val.is_string()) v.metadata[k] = val.get<std::string>();
    }
  }
  return v;
}

// A checkpoint's resolved config is the default of every field the request
// leaves out; its envs come first and the request's win.
std::string CheckpointConfigJson(const SandboxView& v) {
  return json{{"templateID", v.template_id},         {"cpuCount", v.cpu_count}, {"memoryMB", v.memory_mb},
              {"timeoutSec", v.timeout_sec},         {"egressAllowlist", v.egress_allowlist},
              {"envs", v.envs}}
      .dump();
}

// The image an image sandbox's checkpoint was saved over ("" for base).
std::string CheckpointImageDigest(const store::CheckpointRow& c) {
  auto config = ParseStoredConfig(c.config);
  return config ? config->template_digest : "";
}

int CheckpointDiskMb(const store::CheckpointRow& c) {
  auto config = ParseStoredConfig(c.config);
  return config ? config->disk_mb.value_or(0) : 0;
}

void MergeCheckpointConfig(const store::CheckpointRow& c, SandboxRequest& r) {
  auto j = ParseStoredConfig(c.config);
  if (!j) return;
  // An image sandbox's disk: a fork gets the same size unless it asks.
  if (!r.disk_mb && j->disk_mb.value_or(0) > 0) r.disk_mb = *j->disk_mb;
  if (!r.project && c.project_id) r.project = *c.project_id;
  if (!r.template_id) r.template_id = j->template_id;
  if (!r.cpu_count) r.cpu_count = j->cpu_count.value_or(1);
  if (!r.memory_mb) r.memory_mb = j->memory_mb.value_or(512);
  if (!r.timeout_sec) r.timeout_sec = j->timeout_sec.value_or(300);
  if (!r.egress_allowlist) r.egress_allowlist = j->egress_allowlist.value_or(std::vector<std::string>{});
  if (j->envs) {
    auto envs = std::move(*j->envs);
    for (auto& [k, val] : r.envs) envs[k] = val;
    r.envs = std::move(envs);
  }
}

CheckpointView CheckpointViewFromRow(const store::CheckpointRow& c) {
  CheckpointView v;
  v.id = c.id;
  v.sandbox_id = c.sandbox_id;
  v.project_id = c.project_id;
  v.size_bytes = c.size_bytes;
  v.created_at = c.created_at;
  if (auto j = ParseStoredConfig(c.config)) {
    v.template_id = j->template_id;
    v.cpu_count = j->cpu_count.value_or(0);
    v.memory_mb = j->memory_mb.value_or(0);
    v.timeout_sec = j->timeout_sec.value_or(0);
    v.egress_allowlist = j->egress_allowlist.value_or(std::vector<std::string>{});
    for (const auto& [k, val] : j->envs.value_or(std::map<std::string, std::string>{})) v.env_names.push_back(k);
    v.template_digest = j->template_digest;
    v.disk_mb = j->disk_mb.value_or(0);
  }
  return v;
}

// "2026-01-02T03:04:05Z" (or with .mmm) -> unix seconds; 0 if malformed.
int64_t UnixFromRfc3339(const std::string& s) {
  std::tm tm{};
  if (s.size() < 19 || !strptime(s.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

Deadline SandboxService::After(std::chrono::milliseconds d) const {
  return std::chrono::system_clock::now() + d;
}

Result<SandboxView> SandboxService::Create(const std::string& org_id, const SandboxRequest& plain_request) {
  SandboxRequest request = plain_request;
  std::optional<store::CheckpointRow> checkpoint;
  if (request.from_checkpoint) {
    auto c = store_.GetCheckpoint(org_id, *request.from_checkpoint);
    if (!c || c->kind != "user") {
      if (!c && c.error().code != ErrorCode::kNotFound) return c.error();
      return MakeError(ErrorCode::kNotFound, "fromCheckpoint: checkpoint " + *request.from_checkpoint + " not found");
    }
    checkpoint = *c;
    MergeCheckpointConfig(*checkpoint, request);
  }
  auto resolved = resolver_.ResolveSandbox(org_id, request);
  if (!resolved) return resolved.error();
  if (resolved->timeout_sec > limits_.max_lifetime_sec) {
    return MakeError(ErrorCode::kInvalidArgument, "timeout: at most " + std::to_string(limits_.max_lifetime_sec) +
                                                      " seconds (the server's --max-sandbox-lifetime)");
  }

  // An org's image template: resolved here, so a worker can fetch it by
  // digest; another org's template of the same name is not this org's.
  std::string template_digest;
  if (template_digests_) {
    auto digest = template_digests_(org_id, resolved->template_id);
    if (!digest) return digest.error();
    if (*digest) template_digest = **digest;
  }

  SandboxView v;
  v.id = "sb-" + crypto::RandomHex(8);
  v.status = "running";
  v.project_id = resolved->project_id;
  v.template_id = resolved->template_id;
  v.cpu_count = resolved->cpu_count;
  v.memory_mb = resolved->memory_mb;
  v.disk_mb = resolved->disk_mb;
  v.timeout_sec = resolved->timeout_sec;
  v.egress_allowlist = resolved->egress_allowlist;
  v.envs = resolved->envs;
  if (Status m = ValidateSandboxMetadata(request.metadata); !m) return m.error();
  v.metadata = request.metadata;

  // Reserve first: the row ("creating") holds the room on the worker while
  // the worker builds the sandbox, so concurrent creates through any replica
  // see it.
  store::SandboxRow row{v.id, org_id, v.project_id, "", "creating", ConfigJson(v),
                        store::Rfc3339Ms(workers_.Now()), std::nullopt, v.cpu_count, v.memory_mb,
                        json(v.metadata).dump()};
  // The reservation checks the template still exists (a delete racing this
  // create either waits and sees the row, or wins and this fails with 409).
  if (!template_digest.empty()) row.template_name = v.template_id;
  const store::PlacementLimits org_limits{"", limits_.org_max_sandboxes, limits_.org_max_memory_mb, template_digest};
  // A checkpoint's files are on one worker: the restore happens there.
  auto placed = checkpoint ? workers_.PlaceOn(row, checkpoint->worker_id, org_limits) : workers_.Place(row, org_limits);
  if (!placed) return placed.error();
  v.worker_id = placed->worker_id;

  SandboxSpec spec;
  spec.id = v.id;
  spec.project_id = resolved->project_id.value_or("");
  spec.template_id = v.template_id;
  spec.cpu_count = v.cpu_count;
  spec.memory_mb = v.memory_mb;
  spec.disk_mb = v.disk_mb;
  spec.timeout_sec = v.timeout_sec;
  spec.egress_allowlist = v.egress_allowlist;
  spec.envs = resolved->envs;
  spec.secrets = std::move(resolved->secrets);
  spec.template_digest = template_digest;
  if (checkpoint) {
    spec.from_checkpoint = checkpoint->id;
    // The image its files were saved over (pinned: the template's name may
    // name another image by now); empty for a checkpoint of a base sandbox.
    spec.template_digest = CheckpointImageDigest(*checkpoint);
  }
  const size_t n_secrets = spec.secrets.size();
  auto started = placed->client->Create(spec, After(checkpoint ? limits_.checkpoint_deadline : limits_.create_deadline));
  spec.secrets.clear();  // PlainSecret wipes its value
  if (!started) {
    spdlog::warn("sandbox create on worker {} failed: {}", v.worker_id, started.error().message);
    (void)store_.DeleteSandbox(v.id);
    Error err = started.error();
    if (err.code == ErrorCode::kInternal) err.message = "worker failed to create the sandbox: " + err.message;
    return err;
  }
  v.started_at = Rfc3339FromUnix(started->started_at_unix_ms / 1000);
  v.end_at = Rfc3339FromUnix(started->end_at_unix_ms / 1000);
  if (Status s = store_.ActivateSandbox(v.id, ConfigJson(v)); !s) {
    // Marked lost meanwhile (its worker went stale) or the store failed:
    // nobody could reach or delete it, so undo.
    (void)placed->client->Destroy(v.id, After(limits_.call_deadline));
    (void)store_.DeleteSandbox(v.id);
    if (s.error().code == ErrorCode::kNotFound) {
      return MakeError(ErrorCode::kUnavailable, "worker " + v.worker_id + " was lost while creating the sandbox");
    }
    return s.error();
  }
  spdlog::info("sandbox {} created on worker {} ({} secret(s){}{})", v.id, v.worker_id, n_secrets,
               checkpoint ? ", from checkpoint " : "", checkpoint ? checkpoint->id : "");
  return v;
}

Result<SandboxView> SandboxService::Get(const std::string& org_id, const std::string& id) {
  auto row = store_.GetSandbox(org_id, id);
  if (!row) return row.error();
  return ViewFromRow(*row);
}

Result<std::vector<SandboxView>> SandboxService::List(const std::string& org_id) {
  auto rows = store_.ListSandboxes(org_id);
  if (!rows) return rows.error();
  std::vector<SandboxView> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) out.push_back(views_.Get(r.id, r, ViewFromRow));
  return out;
}

Status SandboxService::Delete(const std::string& org_id, const std::string& id) {
  auto row = store_.GetSandbox(org_id, id);
  if (!row) return row.error();
  if (row->status == "creating") return MakeError(ErrorCode::kConflict, "sandbox " + id + " is being created");
  if (row->status == "running") {
    auto client = workers_.ClientFor(row->worker_id);
    if (!client) return client.error();
    Status st = (*client)->Destroy(id, After(limits_.call_deadline));
    // kNotFound: the worker already lost it (timeout, restart): just record.
    if (!st && st.error().code != ErrorCode::kNotFound) return st;
  }
  if (row->status == "hibernated") DropCheckpoint(org_id, ViewFromRow(*row).hibernate_checkpoint);
  return store_.DeleteSandbox(id);
}

Result<ExecOutcome> SandboxService::Exec(const std::string& org_id, const std::string& id,
                                         const ExecCommand& cmd) {
  auto row = store_.GetSandbox(org_id, id);
  if (!row) return row.error();
  if (row->status != "running") {
    return MakeError(ErrorCode::kConflict, "sandbox " + id + " is not running");
  }
  auto client = workers_.ClientFor(row->worker_id);
  if (!client) return client.error();
  auto out = (*client)->Exec(id, cmd, After(std::chrono::seconds(cmd.timeout_sec + 30)));
  if (!out && out.error().code == ErrorCode::kNotFound) {
    (void)store_.StopSandbox(id, store::NowRfc3339());
    return MakeError(ErrorCode::kConflict, "sandbox " + id + " is not running");
  }
  return out;
}

Result<SandboxService::ExecStarter> SandboxService::PrepareExec(const std::string& org_id, const std::string& id,
                                                                ExecCommand cmd) {
  auto admitted = long_calls_.Admit(org_id);  // the per-org cap (429) before anything else
  if (!admitted) return admitted.error();
  auto row = store_.GetSandbox(org_id, id);
  if (!row) return row.error();
  if (row->status != "running") return MakeError(ErrorCode::kConflict, "sandbox " + id + " is not running");
  auto client = workers_.ClientFor(row->worker_id);
  if (!client) return client.error();
  return ExecStarter([this, org_id, id, cmd = std::move(cmd), client = *client,
                      admission = *admitted](ExecDone done) mutable {
    // No thread waits for the command: the client calls back when it ends.
    // The admission token lives until then.
    bool started = false;
    {
      auto on_done = [this, id, done, admission](Result<ExecOutcome> out) {
        if (!out && out.error().code == ErrorCode::kNotFound) {
          (void)store_.StopSandbox(id, store::NowRfc3339());
          out = MakeError(ErrorCode::kConflict, "sandbox " + id + " is not running");
        }
        done(std::move(out));
      };
      started = client->ExecAsync(id, cmd, After(std::chrono::seconds(cmd.timeout_sec + 30)), std::move(on_done));
    }  // not started: no copy of the admission is left but ours
    if (started) return;
    // A client without asynchronous exec: the blocking call on the executor,
    // which admits it again (so ours goes first).
    admission.reset();
    Status queued = long_calls_.Submit(org_id, [this, org_id, id, cmd, done] { done(Exec(org_id, id, cmd)); });
    if (!queued) done(queued.error());
  });
}

Status SandboxService::ExecAsync(const std::string& org_id, const std::string& id, ExecCommand cmd, ExecDone done) {
  auto start = PrepareExec(org_id, id, std::move(cmd));
  if (!start && start.error().code == ErrorCode::kResourceExhausted) return start.error();
  if (!start) {
    done(start.error());
    return {};
  }
  (*start)(std::move(done));
  return {};
}

Result<std::shared_ptr<WorkerClient>> SandboxService::RunningClient(const std::string& org_id,
                                                                   const std::string& id) {
  auto row = store_.GetSandbox(org_id, id);
  if (!row) return row.error();
  if (row->status != "running") return MakeError(ErrorCode::kConflict, "sandbox " + id + " is not running");
  return workers_.ClientFor(row->worker_id);
}

Status SandboxService::SubmitLongCall(const std::string& org_id, std::function<void()> call) {
  return long_calls_.Submit(org_id, std::move(call));
}

// Collects the outcome of one change's push: one part per project
// (listing and resolving) and per worker task; the last part to finish
// completes the ticket. `pending` starts at 1 for the coordinator.
struct SandboxService::Fanout {
  explicit Fanout(std::shared_ptr<RefreshTicket> t) : ticket(std::move(t)) {}
  void Add() {
    std::lock_guard lock(mu);
    ++pending;
  }
  void Finish(int refreshed, const std::vector<std::string>& failed) {
    RefreshReport done;
    {
      std::lock_guard lock(mu);
      report.refreshed += refreshed;
      report.failed.insert(report.failed.end(), failed.begin(), failed.end());
      if (--pending > 0) return;
      done = report;
    }
    ticket->Complete(std::move(done));
  }
  std::mutex mu;
  RefreshReport report;
  int pending = 1;
  std::shared_ptr<RefreshTicket> ticket;
};

void SandboxService::OnSecretChange(const SecretChange& change, std::shared_ptr<RefreshTicket> ticket) {
  StartRefresh(change.org_id, change.affected_project_ids, {change.name}, std::move(ticket));
}

void SandboxService::OnProjectGroupsChanged(const std::string& org_id, const std::string& project_id,
                                            const std::vector<std::string>& group_ids) {
  std::vector<std::string> names;
  for (const auto& group_id : group_ids) {
    auto rows = store_.ListSecrets(group_id, /*with_ciphertext=*/false);
    if (!rows) {
      spdlog::warn("groups of project {} changed but group {} cannot be listed: {}", project_id, group_id,
                   rows.error().message);
      continue;
    }
    for (const auto& row : *rows) {
      if (!Contains(names, row.name)) names.push_back(row.name);
    }
  }
  if (!names.empty()) StartRefresh(org_id, {project_id}, std::move(names), std::make_shared<RefreshTicket>());
}

void SandboxService::StartRefresh(const std::string& org_id, std::vector<std::string> project_ids,
                                  std::vector<std::string> names, std::shared_ptr<RefreshTicket> ticket) {
  if (project_ids.empty()) {
    ticket->Complete({});
    return;
  }
  auto fanout = std::make_shared<Fanout>(std::move(ticket));
  const Deadline deadline = After(limits_.refresh_deadline);
  Status queued = refresh_calls_.Submit(org_id, [this, org_id, project_ids, names, fanout, deadline] {
    for (const auto& project_id : project_ids) RefreshNames(org_id, project_id, names, fanout, deadline);
    fanout->Finish(0, {});
  });
  if (!queued) {
    spdlog::error("secret change in org {} not pushed to running sandboxes: {}", org_id, queued.error().message);
    fanout->Finish(0, {});
  }
}

void SandboxService::RefreshNames(const std::string& org_id, const std::string& project_id,
                                  const std::vector<std::string>& names, const std::shared_ptr<Fanout>& fanout,
                                  Deadline deadline) {
  auto running = store_.ListRunningSandboxes(std::nullopt, project_id);
  if (!running) {
    spdlog::warn("secrets of project {} changed but its sandboxes cannot be listed: {}", project_id,
                 running.error().message);
    return;
  }
  if (running->empty()) return;
  // The effective secrets now (a group's secret may be shadowed by the
  // project's own one, or by an earlier group, of the same name).
  SandboxRequest probe;
  probe.project = project_id;
  auto resolved = resolver_.ResolveSandbox(org_id, probe);
  if (!resolved) {
    spdlog::warn("secrets of project {} changed but it cannot be resolved: {}", project_id,
                 resolved.error().message);
    std::vector<std::string> failed;
    for (const auto& sb : *running) failed.push_back(sb.id);
    fanout->Add();
    fanout->Finish(0, failed);
    return;
  }
  // Per name: the value that wins now, or nullopt = removed. Shared by the
  // worker tasks; PlainSecret wipes its value when the last task is done.
  struct Push {
    std::vector<std::string> names;
    std::vector<std::optional<PlainSecret>> current;
  };
  auto push = std::make_shared<Push>();
  push->names = names;
  for (const auto& name : names) {
    std::optional<PlainSecret> found;
    for (const auto& s : resolved->secrets) {
      if (s.name == name) found = s;
    }
    push->current.push_back(std::move(found));
  }
  resolved->secrets.clear();

  // One task per worker, all under one deadline: a slow or dead worker
  // delays nobody else, and the report comes in bounded time.
  std::map<std::string, std::vector<std::string>> by_worker;
  for (const auto& sb : *running) by_worker[sb.worker_id].push_back(sb.id);
  for (auto& [worker_id, ids] : by_worker) {
    fanout->Add();
    Status queued = refresh_calls_.Submit(org_id, [this, worker_id = worker_id, ids = ids, push, fanout, deadline] {
      std::vector<std::string> failed;
      int ok = 0;
      auto client = workers_.ClientFor(worker_id);
      for (const auto& id : ids) {
        bool all = client.ok();
        for (size_t i = 0; all && i < push->names.size(); ++i) {
          if (std::chrono::system_clock::now() >= deadline) {
            all = false;
            break;
          }
          auto r = push->current[i] ? (*client)->UpdateSecret(id, *push->current[i], deadline)
                                    : (*client)->RemoveSecret(id, push->names[i], deadline);
          if (!r) {
            spdlog::warn("could not refresh secret {} in sandbox {}: {}", push->names[i], id, r.error().message);
            all = false;
          }
        }
        if (all) {
          ++ok;
        } else {
          failed.push_back(id);
        }
      }
      fanout->Finish(ok, failed);
    });
    if (!queued) fanout->Finish(0, ids);
  }
  spdlog::info("secret(s) of project {} being pushed to {} sandbox(es) on {} worker(s)", project_id, running->size(),
               by_worker.size());
}

void SandboxService::EndProjectSandboxes(const std::string& org_id, const std::string& project_id) {
  auto running = store_.ListRunningSandboxes(std::nullopt, project_id);
  if (!running) return;
  for (const auto& sb : *running) {
    if (sb.org_id != org_id) continue;
    if (Status st = Delete(org_id, sb.id); !st) {
      spdlog::warn("project {} deleted but sandbox {} could not be ended: {}", project_id, sb.id,
                   st.error().message);
    } else {
      spdlog::info("sandbox {} ended with its project {}", sb.id, project_id);
    }
  }
}

void SandboxService::ReconcileWorker(const std::string& worker_id, const std::vector<std::string>& running_ids) {
  auto rows = store_.ListRunningSandboxes(worker_id, std::nullopt);
  if (!rows) return;
  for (const auto& row : *rows) {
    if (!Contains(running_ids, row.id)) {
      spdlog::info("sandbox {} is no longer running on worker {}", row.id, worker_id);
      (void)store_.StopSandbox(row.id, store::NowRfc3339());
    }
  }
  // A worker that was silent past the stale window and came back still runs
  // the sandboxes marked lost meanwhile: nobody owns them any more (they got
  // no secrets back either), so end them, off the heartbeat's thread.
  auto lost = store_.ListWorkerSandboxes(worker_id, "lost");
  if (!lost) return;
  for (const auto& row : *lost) {
    if (!Contains(running_ids, row.id)) continue;
    const std::string id = row.id;
    Status queued = long_calls_.Submit("", [this, worker_id, id] {
      auto client = workers_.ClientFor(worker_id);
      if (!client) return;
      Status st = (*client)->Destroy(id, After(limits_.call_deadline));
      if (st || st.error().code == ErrorCode::kNotFound) {
        spdlog::info("sandbox {} was lost and its worker {} came back: destroyed", id, worker_id);
      } else {
        spdlog::warn("lost sandbox {} on worker {} could not be destroyed: {}", id, worker_id, st.error().message);
      }
    });
    if (!queued) return;  // next heartbeat retries
  }
}

Result<std::vector<SandboxSecrets>> SandboxService::SecretsForWorker(const std::string& worker_id,
                                                                     const std::vector<std::string>& ids) {
  // An empty id names no worker (and must never match rows without one).
  if (worker_id.empty()) return std::vector<SandboxSecrets>{};
  auto rows = store_.ListRunningSandboxes(worker_id, std::nullopt);
  if (!rows) return rows.error();
  std::vector<SandboxSecrets> out;
  for (const auto& row : *rows) {
    if (row.worker_id != worker_id || !Contains(ids, row.id)) continue;
    SandboxSecrets entry;
    entry.sandbox_id = row.id;
    entry.egress_allowlist = ViewFromRow(row).egress_allowlist;
    if (row.project_id) {
      SandboxRequest probe;
      probe.project = *row.project_id;
      auto resolved = resolver_.ResolveSandbox(row.org_id, probe);
      if (!resolved) return resolved.error();
      entry.secrets = std::move(resolved->secrets);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

Result<std::vector<std::string>> SandboxService::SweepLost() {
  const auto now = workers_.Now();
  auto lost = store_.MarkLostSandboxes(workers_.StaleBefore(),
                                       store::Rfc3339Ms(now - limits_.create_deadline - kCreatingGrace),
                                       store::Rfc3339Ms(now));
  if (!lost) return lost.error();
  std::vector<std::string> ids;
  for (const auto& row : *lost) {
    spdlog::warn("sandbox {} is lost: worker {} stopped heartbeating", row.id, row.worker_id);
    ids.push_back(row.id);
  }
  return ids;
}

// ---- checkpoints and lifetime (issue 14) -----------------------------------

Status SandboxService::RunLong(const std::string& org_id, std::function<void()> fn) {
  return long_calls_.Submit(org_id, std::move(fn));
}

Result<store::CheckpointRow> SandboxService::SaveCheckpoint(const std::string& org_id, const store::SandboxRow& row,
                                                            const std::string& kind) {
  if (row.status != "running") return MakeError(ErrorCode::kConflict, "sandbox " + row.id + " is not running");
  auto client = workers_.ClientFor(row.worker_id);
  if (!client) return client.error();
  const std::string id = "ck-" + crypto::RandomHex(8);
  auto saved = (*client)->Checkpoint(row.id, id, After(limits_.checkpoint_deadline));
  if (!saved) {
    if (saved.error().code == ErrorCode::kNotFound)
      return MakeError(ErrorCode::kConflict, "sandbox " + row.id + " is not running");
    if (saved.error().code == ErrorCode::kTooLarge) return saved.error();
    Error err = saved.error();
    err.message = "worker could not save the checkpoint: " + err.message;
    return err;
  }
  // An image sandbox's checkpoint pins its image (by digest: the template
  // name may be re-imported) and records its disk.
  json config = json::parse(CheckpointConfigJson(ViewFromRow(row)));
  if (!saved->template_digest.empty()) {
    config["templateDigest"] = saved->template_digest;
    config["diskMB"] = saved->disk_mb;
  }
  store::CheckpointRow c{id,   org_id, row.id, row.project_id, row.worker_id,
                         kind, config.dump(), saved->size_bytes,
                         store::NowRfc3339()};
  if (Status st = store_.InsertCheckpoint(c); !st) {
    (void)(*client)->DeleteCheckpoint(id, After(limits_.call_deadline));
    return st.error();
  }
  spdlog::info("sandbox {}: checkpoint {} saved on worker {} ({} bytes)", row.id, id, row.worker_id, c.size_bytes);
  return c;
}

void SandboxService::DropCheckpoint(const std::string& org_id, const std::string& checkpoint_id) {
  if (checkpoint_id.empty()) return;
  auto c = store_.GetCheckpoint(org_id, checkpoint_id);
  if (!c) return;
  auto client = workers_.ClientFor(c->worker_id);
  Status st = client ? (*client)->DeleteCheckpoint(checkpoint_id, After(limits_.call_deadline)) : Status(client.error());
  if (!st && st.error().code != ErrorCode::kNotFound) {
    spdlog::warn("checkpoint {} could not be deleted on worker {}: {}", checkpoint_id, c->worker_id,
                 st.error().message);
  }
  (void)store_.DeleteCheckpoint(checkpoint_id);
}

Result<CheckpointView> SandboxService::CreateCheckpoint(const std::string& org_id, const std::string& sandbox_id) {
  auto row = store_.GetSandbox(org_id, sandbox_id);
  if (!row) return row.error();
  auto c = SaveCheckpoint(org_id, *row, "user");
  if (!c) return c.error();
  return CheckpointViewFromRow(*c);
}

Result<std::vector<CheckpointView>> SandboxService::ListCheckpoints(const std::string& org_id,
                                                                    const std::optional<std::string>& sandbox_id) {
  auto rows = store_.ListCheckpoints(org_id, sandbox_id);
  if (!rows) return rows.error();
  std::vector<CheckpointView> out;
  for (const auto& r : *rows) out.push_back(CheckpointViewFromRow(r));
  return out;
}

Status SandboxService::DeleteCheckpoint(const std::string& org_id, const std::string& checkpoint_id,
                                        const std::optional<std::string>& sandbox_id) {
  auto c = store_.GetCheckpoint(org_id, checkpoint_id);
  if (!c) return c.error();
  if (c->kind != "user" || (sandbox_id && c->sandbox_id != *sandbox_id)) {
    return MakeError(ErrorCode::kNotFound, "checkpoint not found");
  }
  auto client = workers_.ClientFor(c->worker_id);
  if (client) {
    Status st = (*client)->DeleteCheckpoint(checkpoint_id, After(limits_.call_deadline));
    if (!st && st.error().code != ErrorCode::kNotFound) return st;
  }
  // A worker that is gone took the archive with it: forget the row.
  return store_.DeleteCheckpoint(checkpoint_id);
}

Result<SandboxView> SandboxService::SetTimeout(const std::string& org_id, const std::string& id, int timeout_sec) {
  if (timeout_sec < kMinTimeoutSec) return MakeError(ErrorCode::kInvalidArgument, "timeoutSec: must be at least 1");
  auto row = store_.GetSandbox(org_id, id);
  if (!row) return row.error();
  if (row->status != "running") return MakeError(ErrorCode::kConflict, "sandbox " + id + " is not running");
  SandboxView v = ViewFromRow(*row);
  const int64_t started = UnixFromRfc3339(v.started_at);
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(workers_.Now().time_since_epoch()).count();
  const int64_t max_end = started + limits_.max_lifetime_sec;
  if (now + timeout_sec > max_end) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "timeoutSec: a sandbox lives at most " + std::to_string(limits_.max_lifetime_sec) +
                         " seconds from its start (the server's --max-sandbox-lifetime); this one at most " +
                         std::to_string(std::max<int64_t>(0, max_end - now)) + " more");
  }
  auto client = workers_.ClientFor(row->worker_id);
  if (!client) return client.error();
  auto moved = (*client)->SetTimeout(id, (now + timeout_sec) * 1000, After(limits_.call_deadline));
  if (!moved) {
    if (moved.error().code == ErrorCode::kNotFound) return MakeError(ErrorCode::kConflict, "sandbox " + id + " is not running");
    return moved.error();
  }
  v.end_at = Rfc3339FromUnix(moved->end_at_unix_ms / 1000);
  v.timeout_sec = static_cast<int>(moved->end_at_unix_ms / 1000 - moved->started_at_unix_ms / 1000);
  if (Status st = store_.TransitionSandbox(id, "running", "running", ConfigJson(v)); !st) return st.error();
  spdlog::info("sandbox {}: deadline moved to {}", id, v.end_at);
  return v;
}

Result<SandboxView> SandboxService::Hibernate(const std::string& org_id, const std::string& id) {
  auto row = store_.GetSandbox(org_id, id);
  if (!row) return row.error();
  auto c = SaveCheckpoint(org_id, *row, "hibernate");
  if (!c) return c.error();
  SandboxView v = ViewFromRow(*row);
  v.hibernate_checkpoint = c->id;
  v.status = "hibernated";
  // Hibernated first, so a heartbeat that no longer lists it cannot mark
  // it stopped in between; then everything it holds is freed.
  if (Status st = store_.TransitionSandbox(id, "running", "hibernated", ConfigJson(v)); !st) {
    DropCheckpoint(org_id, c->id);
    return MakeError(ErrorCode::kConflict, "sandbox " + id + " is not running");
  }
  auto client = workers_.ClientFor(row->worker_id);
  Status st = client ? (*client)->Destroy(id, After(limits_.call_deadline)) : Status(client.error());
  if (!st && st.error().code != ErrorCode::kNotFound) {
    (void)store_.TransitionSandbox(id, "hibernated", "running", row->config);
    DropCheckpoint(org_id, c->id);
    return st.error();
  }
  spdlog::info("sandbox {} hibernated (checkpoint {})", id, c->id);
  return v;
}

Result<SandboxView> SandboxService::Wake(const std::string& org_id, const std::string& id) {
  auto row = store_.GetSandbox(org_id, id);
  if (!row) return row.error();
  if (row->status != "hibernated") return MakeError(ErrorCode::kConflict, "sandbox " + id + " is not hibernated");
  SandboxView v = ViewFromRow(*row);
  auto c = store_.GetCheckpoint(org_id, v.hibernate_checkpoint);
  if (!c) return MakeError(ErrorCode::kDataLoss, "sandbox " + id + ": its hibernation checkpoint is gone");
  // "waking" holds the row against a concurrent wake or delete.
  if (Status st = store_.TransitionSandbox(id, "hibernated", "waking", row->config); !st) {
    return MakeError(ErrorCode::kConflict, "sandbox " + id + " is not hibernated");
  }
  auto back = [&](Error e) -> Result<SandboxView> {
    (void)store_.TransitionSandbox(id, "waking", "hibernated", row->config);
    return e;
  };
  // The project's CURRENT secrets; fresh tokens are minted by the worker.
  SandboxRequest req;
  req.project = row->project_id;
  req.template_id = v.template_id;
  req.cpu_count = v.cpu_count;
  req.memory_mb = v.memory_mb;
  req.timeout_sec = std::min(v.timeout_sec, limits_.max_lifetime_sec);
  req.envs = v.envs;
  req.egress_allowlist = v.egress_allowlist;
  auto resolved = resolver_.ResolveSandbox(org_id, req);
  if (!resolved) return back(resolved.error());
  auto client = workers_.ClientFor(c->worker_id);
  if (!client) return back(client.error());
  SandboxSpec spec;
  spec.id = id;
  spec.project_id = resolved->project_id.value_or("");
  spec.template_id = resolved->template_id;
  spec.cpu_count = resolved->cpu_count;
  spec.memory_mb = resolved->memory_mb;
  spec.timeout_sec = resolved->timeout_sec;
  spec.egress_allowlist = resolved->egress_allowlist;
  spec.envs = resolved->envs;
  spec.secrets = std::move(resolved->secrets);
  spec.from_checkpoint = c->id;
  // An image sandbox wakes over the same image, with the same disk.
  spec.template_digest = CheckpointImageDigest(*c);
  spec.disk_mb = CheckpointDiskMb(*c) > 0 ? CheckpointDiskMb(*c) : v.disk_mb;
  auto started = (*client)->Create(spec, After(limits_.checkpoint_deadline));
  spec.secrets.clear();
  if (!started) return back(started.error());
  v.status = "running";
  v.worker_id = c->worker_id;
  v.started_at = Rfc3339FromUnix(started->started_at_unix_ms / 1000);
  v.end_at = Rfc3339FromUnix(started->end_at_unix_ms / 1000);
  v.timeout_sec = spec.timeout_sec;
  v.hibernate_checkpoint.clear();
  if (Status st = store_.TransitionSandbox(id, "waking", "running", ConfigJson(v)); !st) {
    (void)(*client)->Destroy(id, After(limits_.call_deadline));
    return st.error();
  }
  DropCheckpoint(org_id, c->id);
  spdlog::info("sandbox {} woke on worker {}", id, v.worker_id);
  return v;
}

}  // namespace osb::controlplane
