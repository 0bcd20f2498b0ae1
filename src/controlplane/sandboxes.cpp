#include "controlplane/sandboxes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <future>
#include <nlohmann/json.hpp>

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
  return json{{"templateID", v.template_id},     {"cpuCount", v.cpu_count},
              {"memoryMB", v.memory_mb},         {"diskMB", v.disk_mb},
              {"timeoutSec", v.timeout_sec},
              {"egressAllowlist", v.egress_allowlist}, {"startedAt", v.started_at},
              {"endAt", v.end_at}}
      .dump();
}

SandboxView ViewFromRow(const store::SandboxRow& row) {
  SandboxView v;
  v.id = row.id;
  v.status = row.status;
  v.project_id = row.project_id;
  v.worker_id = row.worker_id;
  v.ended_at = row.ended_at;
  const json c = json::parse(row.config, nullptr, false);
  if (c.is_object()) {
    v.template_id = c.value("templateID", "");
    v.cpu_count = c.value("cpuCount", 0);
    v.memory_mb = c.value("memoryMB", 0);
    v.disk_mb = c.value("diskMB", 0);
    v.timeout_sec = c.value("timeoutSec", 0);
    v.egress_allowlist = c.value("egressAllowlist", std::vector<std::string>{});
    v.started_at = c.value("startedAt", row.created_at);
    v.end_at = c.value("endAt", "");
  }
  return v;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

Deadline SandboxService::After(std::chrono::milliseconds d) const {
  return std::chrono::system_clock::now() + d;
}

Result<SandboxView> SandboxService::Create(const std::string& org_id, const SandboxRequest& request) {
  auto resolved = resolver_.ResolveSandbox(org_id, request);
  if (!resolved) return resolved.error();

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

  // Reserve first: the row ("creating") holds the room on the worker while
  // the worker builds the sandbox, so concurrent creates through any replica
  // see it.
  store::SandboxRow row{v.id, org_id, v.project_id, "", "creating", ConfigJson(v),
                        store::Rfc3339Ms(workers_.Now()), std::nullopt, v.cpu_count, v.memory_mb};
  auto placed = workers_.Place(row, {"", limits_.org_max_sandboxes, limits_.org_max_memory_mb});
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
  const size_t n_secrets = spec.secrets.size();
  auto started = placed->client->Create(spec, After(limits_.create_deadline));
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
  spdlog::info("sandbox {} created on worker {} ({} secret(s))", v.id, v.worker_id, n_secrets);
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
  for (const auto& r : *rows) out.push_back(ViewFromRow(r));
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

Status SandboxService::ExecAsync(const std::string& org_id, const std::string& id, ExecCommand cmd,
                                 std::function<void(Result<ExecOutcome>)> done) {
  return long_calls_.Submit(org_id, [this, org_id, id, cmd = std::move(cmd), done = std::move(done)] {
    done(Exec(org_id, id, cmd));
  });
}

RefreshReport SandboxService::OnSecretChange(const SecretChange& change) {
  RefreshReport total;
  for (const auto& project_id : change.affected_project_ids) {
    RefreshReport r = RefreshNames(change.org_id, project_id, {change.name});
    total.refreshed += r.refreshed;
    total.failed.insert(total.failed.end(), r.failed.begin(), r.failed.end());
  }
  return total;
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
  if (!names.empty()) (void)RefreshNames(org_id, project_id, names);
}

RefreshReport SandboxService::RefreshNames(const std::string& org_id, const std::string& project_id,
                                           const std::vector<std::string>& names) {
  RefreshReport report;
  auto running = store_.ListRunningSandboxes(std::nullopt, project_id);
  if (!running) {
    spdlog::warn("secrets of project {} changed but its sandboxes cannot be listed: {}", project_id,
                 running.error().message);
    return report;
  }
  if (running->empty()) return report;
  // The effective secrets now (a group's secret may be shadowed by the
  // project's own one, or by an earlier group, of the same name).
  SandboxRequest probe;
  probe.project = project_id;
  auto resolved = resolver_.ResolveSandbox(org_id, probe);
  if (!resolved) {
    spdlog::warn("secrets of project {} changed but it cannot be resolved: {}", project_id,
                 resolved.error().message);
    for (const auto& sb : *running) report.failed.push_back(sb.id);
    return report;
  }
  std::vector<const PlainSecret*> current;  // per name; nullptr = removed
  for (const auto& name : names) {
    const PlainSecret* found = nullptr;
    for (const auto& s : resolved->secrets) {
      if (s.name == name) found = &s;
    }
    current.push_back(found);
  }

  // One task per worker, all under one deadline: a slow or dead worker
  // delays nobody else, and the caller gets an answer in bounded time.
  std::map<std::string, std::vector<std::string>> by_worker;
  for (const auto& sb : *running) by_worker[sb.worker_id].push_back(sb.id);
  const Deadline deadline = After(limits_.refresh_deadline);
  struct Outcome {
    std::vector<std::string> ok, failed;
  };
  auto push = [&](const std::string& worker_id, const std::vector<std::string>& ids) {
    Outcome out;
    auto client = workers_.ClientFor(worker_id);
    for (const auto& id : ids) {
      bool all = client.ok();
      for (size_t i = 0; all && i < names.size(); ++i) {
        if (std::chrono::system_clock::now() >= deadline) {
          all = false;
          break;
        }
        auto r = current[i] ? (*client)->UpdateSecret(id, *current[i], deadline)
                            : (*client)->RemoveSecret(id, names[i], deadline);
        if (!r) {
          spdlog::warn("could not refresh secret {} in sandbox {}: {}", names[i], id, r.error().message);
          all = false;
        }
      }
      (all ? out.ok : out.failed).push_back(id);
    }
    return out;
  };
  std::vector<std::future<Outcome>> tasks;
  for (const auto& [worker_id, ids] : by_worker) {
    tasks.push_back(std::async(std::launch::async, push, std::cref(worker_id), std::cref(ids)));
  }
  for (auto& t : tasks) {
    Outcome o = t.get();
    report.refreshed += static_cast<int>(o.ok.size());
    report.failed.insert(report.failed.end(), o.failed.begin(), o.failed.end());
  }
  spdlog::info("secret(s) of project {} pushed: {} sandbox(es) refreshed, {} failed", project_id,
               report.refreshed, report.failed.size());
  return report;
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

}  // namespace osb::controlplane
