// The Store implemented once over the Db seam (store/db.h); runs unchanged on
// SQLite and PostgreSQL.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "crypto/random.h"
#include "store/db.h"
#include "store/store.h"

namespace osb::store {
namespace {

using internal::Db;
using internal::Param;
using internal::Row;
using internal::Tx;

std::string ToJsonList(const std::vector<std::string>& items) { return nlohmann::json(items).dump(); }

std::vector<std::string> FromJsonList(const std::optional<std::string>& text) {
  std::vector<std::string> out;
  if (!text) return out;
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return out;
  for (const auto& item : j) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

const std::string& Str(const Row& row, size_t i) {
  static const std::string empty;
  return row.at(i) ? *row.at(i) : empty;
}
int Int(const Row& row, size_t i) { return row.at(i) ? std::stoi(*row.at(i)) : 0; }

constexpr const char* kProjectColumns =
    "p.id, p.org_id, p.name, p.template_id, p.cpu_count, p.memory_mb, p.timeout_sec, "
    "p.egress_allowlist, p.created_at, p.updated_at, g.id, p.disk_mb";

// key_hash, org_id, label, created_at, scope, expires_at
ApiKeyRow KeyFromRow(const Row& r) {
  ApiKeyRow k{Str(r, 0), Str(r, 1), Str(r, 2), Str(r, 3), Str(r, 4), std::nullopt};
  if (r.at(5)) k.expires_at = *r.at(5);
  return k;
}

Project ProjectFromRow(const Row& r) {
  Project p;
  p.id = Str(r, 0);
  p.org_id = Str(r, 1);
  p.name = Str(r, 2);
  p.template_id = Str(r, 3);
  p.cpu_count = Int(r, 4);
  p.memory_mb = Int(r, 5);
  p.timeout_sec = Int(r, 6);
  p.egress_allowlist = FromJsonList(r.at(7));
  p.created_at = Str(r, 8);
  p.updated_at = Str(r, 9);
  p.own_group_id = Str(r, 10);
  p.disk_mb = Int(r, 11);
  return p;
}

constexpr const char* kSandboxColumns =
    "id, org_id, project_id, worker_id, status, config, created_at, ended_at, cpu_count, memory_mb, metadata, "
    "template_name";

SandboxRow SandboxFromRow(const Row& r) {
  return {Str(r, 0), Str(r, 1), r.at(2), Str(r, 3), Str(r, 4), Str(r, 5), Str(r, 6), r.at(7), Int(r, 8), Int(r, 9),
          Str(r, 10), Str(r, 11)};
}

constexpr const char* kCheckpointColumns =
    "id, org_id, sandbox_id, project_id, worker_id, kind, config, size_bytes, created_at";

CheckpointRow CheckpointFromRow(const Row& r) {
  const std::string& size = Str(r, 7);
  return {Str(r, 0), Str(r, 1), Str(r, 2), r.at(3), Str(r, 4), Str(r, 5), Str(r, 6),
          size.empty() ? 0 : std::stoll(size), Str(r, 8)};
}

constexpr const char* kTemplateColumns = "id, org_id, name, digest, size_bytes, created_at";

TemplateRow TemplateFromRow(const Row& r) {
  const std::string& size = Str(r, 4);
  return {Str(r, 0), Str(r, 1), Str(r, 2), Str(r, 3), size.empty() ? 0 : std::stoll(size), Str(r, 5)};
}

// Sandboxes that hold resources on their worker.
constexpr const char* kActiveStatuses = "('running', 'creating')";
// Sandboxes that hold (or will hold again) their template's image.
constexpr const char* kTemplateHoldingStatuses = "('creating', 'running', 'hibernated', 'waking')";

constexpr const char* kGroupColumns = "id, org_id, name, project_id, created_at, updated_at";

SecretGroup GroupFromRow(const Row& r) {
  SecretGroup g;
  g.id = Str(r, 0);
  g.org_id = Str(r, 1);
  g.name = Str(r, 2);
  g.project_id = r.at(3);
  g.created_at = Str(r, 4);
  g.updated_at = Str(r, 5);
  return g;
}

Status LoadAttachments(Tx& tx, Project& p) {
  auto rows = tx.Exec(
      "SELECT group_id FROM project_secret_groups WHERE project_id = $1 ORDER BY position",
      {Param::Text(p.id)});
  if (!rows) return rows.error();
  p.secret_group_ids.clear();
  for (const auto& r : *rows) p.secret_group_ids.push_back(Str(r, 0));
  return {};
}

Status SaveAttachments(Tx& tx, const Project& p) {
  auto cleared = tx.Exec("DELETE FROM project_secret_groups WHERE project_id = $1", {Param::Text(p.id)});
  if (!cleared) return cleared.error();
  for (size_t i = 0; i < p.secret_group_ids.size(); ++i) {
    // The join on secret_groups makes attaching another org's group (or a
    // project-owned group) insert nothing, which is reported below.
    auto added = tx.Exec(
        "INSERT INTO project_secret_groups (project_id, group_id, position) "
        "SELECT $1, id, $3 FROM secret_groups WHERE id = $2 AND org_id = $4 AND project_id IS NULL "
        "RETURNING group_id",
        {Param::Text(p.id), Param::Text(p.secret_group_ids[i]), Param::Int(static_cast<int64_t>(i)),
         Param::Text(p.org_id)});
    if (!added) return added.error();
    if (added->empty()) return MakeError(ErrorCode::kNotFound, "secret group not found");
  }
  return {};
}

// lock: take a row lock for a read-modify-write (PostgreSQL; SQLite's write
// transaction already excludes every other writer).
Result<Project> FindProject(Tx& tx, const std::string& org_id, const std::string& id_or_name,
                            bool lock = false) {
  const std::string sql = std::string("SELECT ") + kProjectColumns +
                          " FROM projects p JOIN secret_groups g ON g.project_id = p.id "
                          "WHERE p.org_id = $1 AND (p.id = $2 OR p.name = $2) "
                          "ORDER BY CASE WHEN p.id = $2 THEN 0 ELSE 1 END LIMIT 1" +
                          std::string(lock ? " FOR UPDATE OF p" : "");
  auto rows = tx.Exec(sql, {Param::Text(org_id), Param::Text(id_or_name)});
  if (!rows) return rows.error();
  if (rows->empty()) return MakeError(ErrorCode::kNotFound, "project not found");
  Project p = ProjectFromRow(rows->front());
  if (Status st = LoadAttachments(tx, p); !st) return st.error();
  return p;
}

constexpr const char* kSecretColumns =
    "s.group_id, s.name, s.key_id, s.allowed_hosts, s.created_at, s.updated_at, s.kind, s.public_material, "
    "s.allowed_requests, s.on_disallowed_request, g.org_id";

SecretRow SecretFromRow(const Row& r, bool with_ciphertext) {
  SecretRow s;
  s.group_id = Str(r, 0);
  s.name = Str(r, 1);
  s.key_id = Str(r, 2);
  s.allowed_hosts = FromJsonList(r.at(3));
  s.created_at = Str(r, 4);
  s.updated_at = Str(r, 5);
  s.kind = Str(r, 6);
  s.public_material = Str(r, 7);
  s.allowed_requests = Str(r, 8);
  s.on_disallowed_request = Str(r, 9);
  s.org_id = Str(r, 10);
  if (with_ciphertext) s.ciphertext = Str(r, 11);
  return s;
}

class SqlStore final : public Store {
 public:
  SqlStore(std::unique_ptr<Db> db, int version) : db_(std::move(db)), version_(version) {}

  Result<int> SchemaVersion() override { return version_; }

  Result<Org> EnsureOrg(const std::string& name) override {
    Org org;
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto inserted = tx.Exec(
          "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
          {Param::Text(NewId("org")), Param::Text(name), Param::Text(NowRfc3339())});
      if (!inserted) return inserted.error();
      auto rows = tx.Exec("SELECT id, name, created_at FROM orgs WHERE name = $1", {Param::Text(name)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kInternal, "org vanished");
      org = {Str(rows->front(), 0), Str(rows->front(), 1), Str(rows->front(), 2)};
      return {};
    });
    if (!st) return st.error();
    return org;
  }

  Status AddApiKey(const std::string& org_id, const std::string& key_hash, const std::string& label,
                   const std::string& scope, const std::optional<std::string>& expires_at) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "INSERT INTO api_keys (key_hash, org_id, label, created_at, scope, expires_at) "
          "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_hash) DO NOTHING",
          {Param::Text(key_hash), Param::Text(org_id), Param::Text(label), Param::Text(NowRfc3339()),
           Param::Text(scope), expires_at ? Param::Text(*expires_at) : Param::Null()});
      if (!rows) return rows.error();
      auto owner = tx.Exec("SELECT org_id FROM api_keys WHERE key_hash = $1", {Param::Text(key_hash)});
      if (!owner) return owner.error();
      if (owner->empty() || Str(owner->front(), 0) != org_id) {
        return MakeError(ErrorCode::kAlreadyExists, "API key already belongs to another org");
      }
      return {};
    });
  }

  Result<ApiKeyRow> GetApiKey(const std::string& key_hash) override {
    ApiKeyRow key;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "SELECT key_hash, org_id, label, created_at, scope, expires_at FROM api_keys WHERE key_hash = $1",
          {Param::Text(key_hash)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "unknown API key");
      key = KeyFromRow(rows->front());
      return {};
    });
    if (!st) return st.error();
    return key;
  }

  Result<std::string> OrgIdForKeyHash(const std::string& key_hash) override {
    std::string org_id;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec("SELECT org_id FROM api_keys WHERE key_hash = $1", {Param::Text(key_hash)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "unknown API key");
      org_id = Str(rows->front(), 0);
      return {};
    });
    if (!st) return st.error();
    return org_id;
  }

  Result<std::vector<ApiKeyRow>> ListApiKeys(const std::string& org_id) override {
    std::vector<ApiKeyRow> keys;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "SELECT key_hash, org_id, label, created_at, scope, expires_at FROM api_keys WHERE org_id = $1 "
          "ORDER BY created_at, key_hash",
          {Param::Text(org_id)});
      if (!rows) return rows.error();
      for (const auto& r : *rows) keys.push_back(KeyFromRow(r));
      return {};
    });
    if (!st) return st.error();
    return keys;
  }

  Status DeleteApiKey(const std::string& org_id, const std::string& key_hash, const std::string& now) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      // Lock the org's keys (PostgreSQL) so two concurrent deletes cannot
      // both see "another admin key remains" and remove the last two.
      auto rows = tx.Exec(std::string("SELECT key_hash, scope, expires_at FROM api_keys WHERE org_id = $1") +
                              (db_->dialect() == internal::Dialect::kPostgres ? " FOR UPDATE" : ""),
                          {Param::Text(org_id)});
      if (!rows) return rows.error();
      bool found = false;
      bool deleting_admin = false;
      int other_usable_admins = 0;
      for (const auto& r : *rows) {
        const bool usable_admin = Str(r, 1) == kScopeAdmin && (!r[2] || Str(r, 2) > now);
        if (Str(r, 0) == key_hash) {
          found = true;
          deleting_admin = usable_admin;
        } else if (usable_admin) {
          ++other_usable_admins;
        }
      }
      if (!found) return MakeError(ErrorCode::kNotFound, "API key not found");
      if (deleting_admin && other_usable_admins == 0) {
        return MakeError(ErrorCode::kConflict,
                         "this is the org's last unexpired admin API key: create another admin key before "
                         "deleting it");
      }
      auto del = tx.Exec("DELETE FROM api_keys WHERE org_id = $1 AND key_hash = $2",
                         {Param::Text(org_id), Param::Text(key_hash)});
      if (!del) return del.error();
      return {};
    });
  }

  Result<Project> CreateProject(Project p) override {
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto inserted = tx.Exec(
          "INSERT INTO projects (id, org_id, name, template_id, cpu_count, memory_mb, timeout_sec, "
          "egress_allowlist, created_at, updated_at, disk_mb) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
          {Param::Text(p.id), Param::Text(p.org_id), Param::Text(p.name), Param::Text(p.template_id),
           Param::Int(p.cpu_count), Param::Int(p.memory_mb), Param::Int(p.timeout_sec),
           Param::Text(ToJsonList(p.egress_allowlist)), Param::Text(p.created_at),
           Param::Text(p.updated_at), Param::Int(p.disk_mb)});
      if (!inserted) return inserted.error();
      p.own_group_id = NewId("grp");
      auto group = tx.Exec(
          "INSERT INTO secret_groups (id, org_id, project_id, name, created_at, updated_at) "
          "VALUES ($1, $2, $3, $4, $5, $5)",
          {Param::Text(p.own_group_id), Param::Text(p.org_id), Param::Text(p.id),
           Param::Text("project:" + p.id), Param::Text(p.created_at)});
      if (!group) return group.error();
      return SaveAttachments(tx, p);
    });
    if (!st) return st.error();
    return p;
  }

  Result<Project> GetProject(const std::string& org_id, const std::string& id_or_name) override {
    Project p;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto found = FindProject(tx, org_id, id_or_name);
      if (!found) return found.error();
      p = std::move(*found);
      return {};
    });
    if (!st) return st.error();
    return p;
  }

  Result<std::vector<Project>> ListProjects(const std::string& org_id) override {
    std::vector<Project> out;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(std::string("SELECT ") + kProjectColumns +
                              " FROM projects p JOIN secret_groups g ON g.project_id = p.id "
                              "WHERE p.org_id = $1 ORDER BY p.created_at, p.name",
                          {Param::Text(org_id)});
      if (!rows) return rows.error();
      for (const auto& r : *rows) {
        out.push_back(ProjectFromRow(r));
        if (Status s = LoadAttachments(tx, out.back()); !s) return s;
      }
      return {};
    });
    if (!st) return st.error();
    return out;
  }

  Result<Project> UpdateProject(const std::string& org_id, const std::string& project_id,
                                const std::function<Status(Project&)>& mutate) override {
    Project stored;
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto current = FindProject(tx, org_id, project_id, db_->dialect() == internal::Dialect::kPostgres);
      if (!current) return current.error();
      if (current->id != project_id) return MakeError(ErrorCode::kNotFound, "project not found");
      Project p = std::move(*current);
      if (Status s = mutate(p); !s) return s;
      p.id = project_id;
      p.org_id = org_id;
      auto rows = tx.Exec(
          "UPDATE projects SET name = $3, template_id = $4, cpu_count = $5, memory_mb = $6, "
          "timeout_sec = $7, egress_allowlist = $8, updated_at = $9, disk_mb = $10 "
          "WHERE id = $1 AND org_id = $2 RETURNING id",
          {Param::Text(p.id), Param::Text(p.org_id), Param::Text(p.name), Param::Text(p.template_id),
           Param::Int(p.cpu_count), Param::Int(p.memory_mb), Param::Int(p.timeout_sec),
           Param::Text(ToJsonList(p.egress_allowlist)), Param::Text(p.updated_at), Param::Int(p.disk_mb)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "project not found");
      if (Status s = SaveAttachments(tx, p); !s) return s;
      auto found = FindProject(tx, p.org_id, p.id);
      if (!found) return found.error();
      stored = std::move(*found);
      return {};
    });
    if (!st) return st.error();
    return stored;
  }

  Status DeleteProject(const std::string& org_id, const std::string& project_id) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec("DELETE FROM projects WHERE id = $1 AND org_id = $2 RETURNING id",
                          {Param::Text(project_id), Param::Text(org_id)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "project not found");
      return {};
    });
  }

  Result<SecretGroup> CreateGroup(SecretGroup g) override {
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "INSERT INTO secret_groups (id, org_id, project_id, name, created_at, updated_at) "
          "VALUES ($1, $2, NULL, $3, $4, $5)",
          {Param::Text(g.id), Param::Text(g.org_id), Param::Text(g.name), Param::Text(g.created_at),
           Param::Text(g.updated_at)});
      if (!rows) return rows.error();
      return {};
    });
    if (!st) return st.error();
    return g;
  }

  Result<SecretGroup> GetGroup(const std::string& org_id, const std::string& id_or_name) override {
    return QueryOneGroup(std::string("SELECT ") + kGroupColumns +
                             " FROM secret_groups WHERE org_id = $1 AND project_id IS NULL "
                             "AND (id = $2 OR name = $2) "
                             "ORDER BY CASE WHEN id = $2 THEN 0 ELSE 1 END LIMIT 1",
                         {Param::Text(org_id), Param::Text(id_or_name)});
  }

  Result<SecretGroup> GetGroupById(const std::string& group_id) override {
    return QueryOneGroup(std::string("SELECT ") + kGroupColumns + " FROM secret_groups WHERE id = $1",
                         {Param::Text(group_id)});
  }

  Result<std::vector<SecretGroup>> ListGroups(const std::string& org_id) override {
    std::vector<SecretGroup> out;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(std::string("SELECT ") + kGroupColumns +
                              " FROM secret_groups WHERE org_id = $1 AND project_id IS NULL "
                              "ORDER BY created_at, name",
                          {Param::Text(org_id)});
      if (!rows) return rows.error();
      for (const auto& r : *rows) out.push_back(GroupFromRow(r));
      return {};
    });
    if (!st) return st.error();
    return out;
  }

  Result<SecretGroup> RenameGroup(const std::string& org_id, const std::string& group_id,
                                  const std::string& new_name, const std::string& updated_at) override {
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "UPDATE secret_groups SET name = $3, updated_at = $4 "
          "WHERE id = $1 AND org_id = $2 AND project_id IS NULL RETURNING id",
          {Param::Text(group_id), Param::Text(org_id), Param::Text(new_name), Param::Text(updated_at)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "secret group not found");
      return {};
    });
    if (!st) return st.error();
    return GetGroupById(group_id);
  }

  Status DeleteGroup(const std::string& org_id, const std::string& group_id) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto users = tx.Exec(
          "SELECT p.name FROM project_secret_groups a JOIN projects p ON p.id = a.project_id "
          "WHERE a.group_id = $1 ORDER BY p.name LIMIT 1",
          {Param::Text(group_id)});
      if (!users) return users.error();
      if (!users->empty()) {
        return MakeError(ErrorCode::kFailedPrecondition,
                         "secret group is attached to project '" + Str(users->front(), 0) + "'");
      }
      auto rows = tx.Exec(
          "DELETE FROM secret_groups WHERE id = $1 AND org_id = $2 AND project_id IS NULL RETURNING id",
          {Param::Text(group_id), Param::Text(org_id)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "secret group not found");
      return {};
    });
  }

  Result<SecretRow> PutSecret(const SecretRow& row) override {
    SecretRow stored;
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "INSERT INTO org_secrets (group_id, name, ciphertext, key_id, allowed_hosts, created_at, "
          "updated_at, kind, public_material, allowed_requests, on_disallowed_request) "
          "VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10) "
          "ON CONFLICT (group_id, name) DO UPDATE SET ciphertext = excluded.ciphertext, "
          "key_id = excluded.key_id, allowed_hosts = excluded.allowed_hosts, "
          "updated_at = excluded.updated_at, kind = excluded.kind, "
          "public_material = excluded.public_material, allowed_requests = excluded.allowed_requests, "
          "on_disallowed_request = excluded.on_disallowed_request "
          "RETURNING group_id, name, key_id, allowed_hosts, created_at, updated_at, kind, public_material, "
          "allowed_requests, on_disallowed_request",
          {Param::Text(row.group_id), Param::Text(row.name), Param::Blob(row.ciphertext),
           Param::Text(row.key_id), Param::Text(ToJsonList(row.allowed_hosts)),
           Param::Text(row.updated_at), Param::Text(row.kind), Param::Text(row.public_material),
           Param::Text(row.allowed_requests), Param::Text(row.on_disallowed_request)});
      if (!rows) return rows.error();
      Row r = rows->front();
      r.emplace_back(row.org_id);
      stored = SecretFromRow(r, false);
      return {};
    });
    if (!st) {
      if (st.error().code == ErrorCode::kFailedPrecondition) {
        return MakeError(ErrorCode::kNotFound, "secret group not found");
      }
      return st.error();
    }
    return stored;
  }

  Result<std::vector<SecretRow>> ListSecrets(const std::string& group_id, bool with_ciphertext) override {
    return QuerySecrets(std::string("SELECT ") + kSecretColumns + ", s.ciphertext "
                            "FROM org_secrets s JOIN secret_groups g ON g.id = s.group_id "
                            "WHERE s.group_id = $1 ORDER BY s.name",
                        {Param::Text(group_id)}, with_ciphertext);
  }

  Status DeleteSecret(const std::string& group_id, const std::string& name) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec("DELETE FROM org_secrets WHERE group_id = $1 AND name = $2 RETURNING name",
                          {Param::Text(group_id), Param::Text(name)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "secret not found");
      return {};
    });
  }

  Result<std::vector<SecretRow>> ListAllSecrets() override {
    return QuerySecrets(std::string("SELECT ") + kSecretColumns + ", s.ciphertext "
                            "FROM org_secrets s JOIN secret_groups g ON g.id = s.group_id "
                            "ORDER BY s.group_id, s.name",
                        {}, true);
  }

  Result<bool> ReplaceCiphertext(const std::string& group_id, const std::string& name,
                                 const std::string& old_ciphertext, const std::string& new_ciphertext,
                                 const std::string& new_key_id) override {
    bool replaced = false;
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      // updated_at is left alone: the secret's value did not change.
      auto rows = tx.Exec(
          "UPDATE org_secrets SET ciphertext = $4, key_id = $5 "
          "WHERE group_id = $1 AND name = $2 AND ciphertext = $3 RETURNING name",
          {Param::Text(group_id), Param::Text(name), Param::Blob(old_ciphertext),
           Param::Blob(new_ciphertext), Param::Text(new_key_id)});
      if (!rows) return rows.error();
      replaced = !rows->empty();
      return {};
    });
    if (!st) return st.error();
    return replaced;
  }

 private:
  Result<SecretGroup> QueryOneGroup(const std::string& sql, const std::vector<Param>& params) {
    SecretGroup g;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(sql, params);
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "secret group not found");
      g = GroupFromRow(rows->front());
      return {};
    });
    if (!st) return st.error();
    return g;
  }

  // ---- workers and sandboxes ----

  Status UpsertWorker(const WorkerRow& w) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "INSERT INTO workers (id, address, capacity, last_heartbeat, cpu_count, memory_mb, registered_at) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7) "
          "ON CONFLICT (id) DO UPDATE SET address = excluded.address, capacity = excluded.capacity, "
          "last_heartbeat = excluded.last_heartbeat, cpu_count = excluded.cpu_count, "
          "memory_mb = excluded.memory_mb, registered_at = excluded.registered_at",
          {Param::Text(w.id), Param::Text(w.address), Param::Int(w.capacity), Param::Text(w.last_heartbeat),
           Param::Int(w.cpu_count), Param::Int(w.memory_mb),
           Param::Text(w.registered_at.empty() ? w.last_heartbeat : w.registered_at)});
      if (!rows) return rows.error();
      return {};
    });
  }

  Status TouchWorker(const std::string& worker_id, const std::string& heartbeat) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      // Never moves a heartbeat backwards (replicas' clocks differ slightly).
      auto rows = tx.Exec(
          "UPDATE workers SET last_heartbeat = CASE WHEN last_heartbeat > $2 THEN last_heartbeat ELSE $2 END "
          "WHERE id = $1 RETURNING id",
          {Param::Text(worker_id), Param::Text(heartbeat)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "worker not registered");
      return {};
    });
  }

  Result<std::vector<WorkerRow>> ListWorkers() override {
    std::vector<WorkerRow> out;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(std::string(
          "SELECT w.id, w.address, w.capacity, w.last_heartbeat, w.cpu_count, w.memory_mb, w.registered_at, "
          "COUNT(s.id), COALESCE(SUM(s.cpu_count), 0), COALESCE(SUM(s.memory_mb), 0) "
          "FROM workers w LEFT JOIN sandboxes s ON s.worker_id = w.id AND s.status IN ") + kActiveStatuses +
          " GROUP BY w.id, w.address, w.capacity, w.last_heartbeat, w.cpu_count, w.memory_mb, w.registered_at "
          "ORDER BY w.id");
      if (!rows) return rows.error();
      for (const auto& r : *rows) {
        WorkerRow w{Str(r, 0), Str(r, 1), Int(r, 2), Str(r, 3), Int(r, 4), Int(r, 5), Str(r, 6)};
        w.sandboxes = Int(r, 7);
        w.cpu_used = Int(r, 8);
        w.memory_used_mb = Int(r, 9);
        out.push_back(std::move(w));
      }
      return {};
    });
    if (!st) return st.error();
    return out;
  }

  static Result<std::vector<Row>> Insert(Tx& tx, const SandboxRow& sb) {
    return tx.Exec(
        "INSERT INTO sandboxes (id, org_id, project_id, worker_id, status, config, created_at, ended_at, "
        "cpu_count, memory_mb, metadata, template_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        {Param::Text(sb.id), Param::Text(sb.org_id), sb.project_id ? Param::Text(*sb.project_id) : Param::Null(),
         Param::Text(sb.worker_id), Param::Text(sb.status), Param::Text(sb.config), Param::Text(sb.created_at),
         sb.ended_at ? Param::Text(*sb.ended_at) : Param::Null(), Param::Int(sb.cpu_count),
         Param::Int(sb.memory_mb), Param::Text(sb.metadata.empty() ? "{}" : sb.metadata),
         sb.template_name.empty() ? Param::Null() : Param::Text(sb.template_name)});
  }

  Status InsertSandbox(const SandboxRow& sb) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = Insert(tx, sb);
      if (!rows) return rows.error();
      return {};
    });
  }

  Status ReserveSandbox(const SandboxRow& sb, const PlacementLimits& limits) override {
    const bool pg = db_->dialect() == internal::Dialect::kPostgres;
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      // Lock order: org, then the one worker. Under READ COMMITTED every
      // statement after the lock sees the rows committed by whoever held it.
      if (pg && (limits.org_max_sandboxes > 0 || limits.org_max_memory_mb > 0)) {
        auto org = tx.Exec("SELECT id FROM orgs WHERE id = $1 FOR UPDATE", {Param::Text(sb.org_id)});
        if (!org) return org.error();
      }
      // The template must outlive this transaction: FOR SHARE conflicts with
      // DeleteTemplate's FOR UPDATE, so a delete waits for the commit and
      // then sees this row (or has committed first, and this finds nothing).
      if (!sb.template_name.empty()) {
        auto tpl = tx.Exec(std::string("SELECT digest FROM templates WHERE org_id = $1 AND name = $2") +
                               (pg ? " FOR SHARE" : ""),
                           {Param::Text(sb.org_id), Param::Text(sb.template_name)});
        if (!tpl) return tpl.error();
        if (tpl->empty() || Str(tpl->front(), 0) != limits.template_digest) {
          return MakeError(ErrorCode::kConflict, "templateID: template " + sb.template_name +
                                                     (tpl->empty() ? " was deleted" : " was replaced") +
                                                     " while the sandbox was being created");
        }
      }
      auto worker = tx.Exec(std::string("SELECT capacity, cpu_count, memory_mb, last_heartbeat FROM workers "
                                        "WHERE id = $1") + (pg ? " FOR UPDATE" : ""),
                            {Param::Text(sb.worker_id)});
      if (!worker) return worker.error();
      if (worker->empty()) return MakeError(ErrorCode::kUnavailable, "worker not registered");
      const Row& w = worker->front();
      if (Str(w, 3) < limits.fresh_since) return MakeError(ErrorCode::kUnavailable, "worker is not heartbeating");
      auto load = tx.Exec(std::string("SELECT COUNT(id), COALESCE(SUM(cpu_count), 0), COALESCE(SUM(memory_mb), 0) "
                                      "FROM sandboxes WHERE worker_id = $1 AND status IN ") + kActiveStatuses,
                          {Param::Text(sb.worker_id)});
      if (!load) return load.error();
      const Row& l = load->front();
      const int capacity = Int(w, 0), cpus = Int(w, 1), memory = Int(w, 2);
      if (Int(l, 0) + 1 > capacity || (cpus > 0 && Int(l, 1) + sb.cpu_count > cpus) ||
          (memory > 0 && Int(l, 2) + sb.memory_mb > memory)) {
        return MakeError(ErrorCode::kUnavailable, "worker is full");
      }
      if (limits.org_max_sandboxes > 0 || limits.org_max_memory_mb > 0) {
        auto org = tx.Exec(std::string("SELECT COUNT(id), COALESCE(SUM(memory_mb), 0) FROM sandboxes "
                                       "WHERE org_id = $1 AND status IN ") + kActiveStatuses,
                           {Param::Text(sb.org_id)});
        if (!org) return org.error();
        const int count = Int(org->front(), 0);
        const int64_t mem = std::stoll(Str(org->front(), 1).empty() ? "0" : Str(org->front(), 1));
        if (limits.org_max_sandboxes > 0 && count + 1 > limits.org_max_sandboxes) {
          return MakeError(ErrorCode::kResourceExhausted,
                           "org limit: at most " + std::to_string(limits.org_max_sandboxes) +
                               " running sandboxes (--org-max-sandboxes)");
        }
        if (limits.org_max_memory_mb > 0 && mem + sb.memory_mb > limits.org_max_memory_mb) {
          return MakeError(ErrorCode::kResourceExhausted,
                           "org limit: at most " + std::to_string(limits.org_max_memory_mb) +
                               " MiB of sandbox memory in total (--org-max-memory-mb)");
        }
      }
      auto rows = Insert(tx, sb);
      if (!rows) return rows.error();
      return {};
    });
  }

  Status ActivateSandbox(const std::string& id, const std::string& config) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "UPDATE sandboxes SET status = 'running', config = $2 WHERE id = $1 AND status = 'creating' RETURNING id",
          {Param::Text(id), Param::Text(config)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "sandbox is no longer being created");
      return {};
    });
  }

  Result<std::vector<SandboxRow>> MarkLostSandboxes(const std::string& stale_before,
                                                    const std::string& creating_before,
                                                    const std::string& now) override {
    std::vector<SandboxRow> out;
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(std::string("UPDATE sandboxes SET status = 'lost', ended_at = $3 WHERE (status IN ") +
                              kActiveStatuses +
                              " AND worker_id IN (SELECT id FROM workers WHERE last_heartbeat < $1)) "
                              "OR (status = 'creating' AND created_at < $2) RETURNING " + kSandboxColumns,
                          {Param::Text(stale_before), Param::Text(creating_before), Param::Text(now)});
      if (!rows) return rows.error();
      for (const auto& r : *rows) out.push_back(SandboxFromRow(r));
      return {};
    });
    if (!st) return st.error();
    return out;
  }

  Result<SandboxRow> GetSandbox(const std::string& org_id, const std::string& id) override {
    auto rows = QuerySandboxes(std::string("SELECT ") + kSandboxColumns +
                                   " FROM sandboxes WHERE id = $1 AND org_id = $2",
                               {Param::Text(id), Param::Text(org_id)});
    if (!rows) return rows.error();
    if (rows->empty()) return MakeError(ErrorCode::kNotFound, "sandbox not found");
    return rows->front();
  }

  Result<std::vector<SandboxRow>> ListSandboxes(const std::string& org_id) override {
    return QuerySandboxes(std::string("SELECT ") + kSandboxColumns +
                              " FROM sandboxes WHERE org_id = $1 ORDER BY created_at, id",
                          {Param::Text(org_id)});
  }

  Result<std::vector<SandboxRow>> ListRunningSandboxes(const std::optional<std::string>& worker_id,
                                                       const std::optional<std::string>& project_id) override {
    return QuerySandboxes(std::string("SELECT ") + kSandboxColumns +
                              " FROM sandboxes WHERE status = 'running' "
                              "AND ($1 = '' OR worker_id = $1) AND ($2 = '' OR project_id = $2) "
                              "ORDER BY created_at, id",
                          {Param::Text(worker_id.value_or("")), Param::Text(project_id.value_or(""))});
  }

  Result<std::vector<SandboxRow>> ListWorkerSandboxes(const std::string& worker_id,
                                                      const std::string& status) override {
    return QuerySandboxes(std::string("SELECT ") + kSandboxColumns +
                              " FROM sandboxes WHERE worker_id = $1 AND status = $2 ORDER BY created_at, id",
                          {Param::Text(worker_id), Param::Text(status)});
  }

  Status StopSandbox(const std::string& id, const std::string& ended_at) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "UPDATE sandboxes SET status = 'stopped', ended_at = COALESCE(ended_at, $2) "
          "WHERE id = $1 RETURNING id",
          {Param::Text(id), Param::Text(ended_at)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "sandbox not found");
      return {};
    });
  }

  Status DeleteSandbox(const std::string& id) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec("DELETE FROM sandboxes WHERE id = $1 RETURNING id", {Param::Text(id)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "sandbox not found");
      return {};
    });
  }

  Status TransitionSandbox(const std::string& id, const std::string& from, const std::string& to,
                           const std::string& config) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "UPDATE sandboxes SET status = $3, config = $4, "
          "ended_at = CASE WHEN $3 IN ('running', 'creating') THEN NULL ELSE ended_at END "
          "WHERE id = $1 AND status = $2 RETURNING id",
          {Param::Text(id), Param::Text(from), Param::Text(to), Param::Text(config)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "sandbox is not " + from);
      return {};
    });
  }

  Status InsertCheckpoint(const CheckpointRow& c) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          std::string("INSERT INTO checkpoints (") + kCheckpointColumns +
              ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
          {Param::Text(c.id), Param::Text(c.org_id), Param::Text(c.sandbox_id),
           c.project_id ? Param::Text(*c.project_id) : Param::Null(), Param::Text(c.worker_id), Param::Text(c.kind),
           Param::Text(c.config), Param::Int(c.size_bytes), Param::Text(c.created_at)});
      if (!rows) return rows.error();
      return {};
    });
  }

  Result<CheckpointRow> GetCheckpoint(const std::string& org_id, const std::string& id) override {
    auto rows = QueryCheckpoints(std::string("SELECT ") + kCheckpointColumns +
                                     " FROM checkpoints WHERE id = $1 AND org_id = $2",
                                 {Param::Text(id), Param::Text(org_id)});
    if (!rows) return rows.error();
    if (rows->empty()) return MakeError(ErrorCode::kNotFound, "checkpoint not found");
    return rows->front();
  }

  Result<std::vector<CheckpointRow>> ListCheckpoints(const std::string& org_id,
                                                     const std::optional<std::string>& sandbox_id) override {
    return QueryCheckpoints(std::string("SELECT ") + kCheckpointColumns +
                                " FROM checkpoints WHERE org_id = $1 AND kind = 'user' "
                                "AND ($2 = '' OR sandbox_id = $2) ORDER BY created_at, id",
                            {Param::Text(org_id), Param::Text(sandbox_id.value_or(""))});
  }

  Status DeleteCheckpoint(const std::string& id) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec("DELETE FROM checkpoints WHERE id = $1 RETURNING id", {Param::Text(id)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "checkpoint not found");
      return {};
    });
  }

  Status InsertTemplate(const TemplateRow& t) override {
    return db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(std::string("INSERT INTO templates (") + kTemplateColumns + ") VALUES ($1, $2, $3, $4, $5, $6)",
                          {Param::Text(t.id), Param::Text(t.org_id), Param::Text(t.name), Param::Text(t.digest),
                           Param::Int(t.size_bytes), Param::Text(t.created_at)});
      if (!rows && rows.error().code == ErrorCode::kAlreadyExists)
        return MakeError(ErrorCode::kAlreadyExists, "template " + t.name + " already exists");
      if (!rows) return rows.error();
      return {};
    });
  }

  Result<TemplateRow> GetTemplate(const std::string& org_id, const std::string& name) override {
    auto rows = QueryTemplates(std::string("SELECT ") + kTemplateColumns + " FROM templates WHERE org_id = $1 AND name = $2",
                               {Param::Text(org_id), Param::Text(name)});
    if (!rows) return rows.error();
    if (rows->empty()) return MakeError(ErrorCode::kNotFound, "template " + name + " not found");
    return rows->front();
  }

  Result<std::vector<TemplateRow>> ListTemplates(const std::string& org_id) override {
    return QueryTemplates(std::string("SELECT ") + kTemplateColumns + " FROM templates WHERE org_id = $1 ORDER BY name",
                          {Param::Text(org_id)});
  }

  Result<TemplateRow> DeleteTemplate(const std::string& org_id, const std::string& name) override {
    const bool pg = db_->dialect() == internal::Dialect::kPostgres;
    TemplateRow deleted;
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      // Lock the row first (ReserveSandbox holds it FOR SHARE): under READ
      // COMMITTED the sandbox query below then sees every reservation that
      // got the template before us. SQLite: the write lock is already ours.
      auto rows = tx.Exec(std::string("SELECT ") + kTemplateColumns +
                              " FROM templates WHERE org_id = $1 AND name = $2" + (pg ? " FOR UPDATE" : ""),
                          {Param::Text(org_id), Param::Text(name)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "template " + name + " not found");
      deleted = TemplateFromRow(rows->front());
      auto users = tx.Exec(std::string("SELECT id FROM sandboxes WHERE org_id = $1 AND template_name = $2 AND "
                                       "status IN ") + kTemplateHoldingStatuses + " ORDER BY created_at, id LIMIT 1",
                           {Param::Text(org_id), Param::Text(name)});
      if (!users) return users.error();
      if (!users->empty()) {
        return MakeError(ErrorCode::kConflict, "template " + name + " is in use by sandbox " +
                                                   Str(users->front(), 0) + " (delete its sandboxes first)");
      }
      auto gone = tx.Exec("DELETE FROM templates WHERE id = $1", {Param::Text(deleted.id)});
      if (!gone) return gone.error();
      return {};
    });
    if (!st) return st.error();
    return deleted;
  }

  Result<int> CountTemplatesWithDigest(const std::string& digest) override {
    int count = 0;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec("SELECT COUNT(*) FROM templates WHERE digest = $1", {Param::Text(digest)});
      if (!rows) return rows.error();
      count = std::stoi(rows->at(0).at(0).value_or("0"));
      return {};
    });
    if (!st) return st.error();
    return count;
  }

  // ---- oauth2-refresh coordination (migration 12) ----
  static constexpr const char* kOAuthColumns =
      "project_id, name, material_fp, generation, access_ciphertext, expires_at, refresh_ciphertext, "
      "lease_holder, lease_until";
  static OAuthTokenRow OAuthFromRow(const Row& r) {
    OAuthTokenRow o;
    o.project_id = Str(r, 0);
    o.name = Str(r, 1);
    o.material_fp = Str(r, 2);
    o.generation = r.at(3) ? std::stoll(*r.at(3)) : 0;
    o.access_ciphertext = Str(r, 4);
    o.expires_at = Str(r, 5);
    o.refresh_ciphertext = Str(r, 6);
    o.lease_holder = Str(r, 7);
    o.lease_until = Str(r, 8);
    return o;
  }
  static Param BlobOrNull(const std::string& b) { return b.empty() ? Param::Null() : Param::Blob(b); }

  Result<OAuthAcquire> AcquireOAuthLease(const std::string& project_id, const std::string& name,
                                         const std::string& material_fp, const std::string& worker_id,
                                         const std::string& now, const std::string& valid_after,
                                         const std::string& lease_until) override {
    OAuthAcquire out;
    const bool pg = db_->dialect() == internal::Dialect::kPostgres;
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto created = tx.Exec(
          "INSERT INTO oauth_tokens (project_id, name, material_fp, generation, expires_at, lease_holder, "
          "lease_until, updated_at) VALUES ($1, $2, $3, 0, '', '', '', $4) ON CONFLICT DO NOTHING",
          {Param::Text(project_id), Param::Text(name), Param::Text(material_fp), Param::Text(now)});
      if (!created) return created.error();
      auto rows = tx.Exec(std::string("SELECT ") + kOAuthColumns +
                              " FROM oauth_tokens WHERE project_id = $1 AND name = $2" + (pg ? " FOR UPDATE" : ""),
                          {Param::Text(project_id), Param::Text(name)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "oauth token row vanished");
      OAuthTokenRow row = OAuthFromRow(rows->front());
      if (row.material_fp != material_fp) {
        // The secret was set again: what was learnt from the old material goes.
        row.material_fp = material_fp;
        row.access_ciphertext.clear();
        row.expires_at.clear();
        row.refresh_ciphertext.clear();
        row.lease_holder.clear();
        row.lease_until.clear();
      } else if (!row.access_ciphertext.empty() && row.expires_at > valid_after) {
        out.row = std::move(row);
        return {};
      } else if (!row.lease_holder.empty() && row.lease_until > now) {
        out.row = std::move(row);
        return {};
      }
      const int64_t old_generation = row.generation;
      row.generation = old_generation + 1;
      row.lease_holder = worker_id;
      row.lease_until = lease_until;
      // Conditional on the generation read above: a compare-and-set even
      // where the row lock is not what serialises the callers.
      auto updated = tx.Exec(
          "UPDATE oauth_tokens SET material_fp = $3, generation = $4, access_ciphertext = $5, expires_at = $6, "
          "refresh_ciphertext = $7, lease_holder = $8, lease_until = $9, updated_at = $10 "
          "WHERE project_id = $1 AND name = $2 AND generation = $11 RETURNING generation",
          {Param::Text(project_id), Param::Text(name), Param::Text(row.material_fp), Param::Int(row.generation),
           BlobOrNull(row.access_ciphertext), Param::Text(row.expires_at), BlobOrNull(row.refresh_ciphertext),
           Param::Text(row.lease_holder), Param::Text(row.lease_until), Param::Text(now),
           Param::Int(old_generation)});
      if (!updated) return updated.error();
      if (updated->empty()) return MakeError(ErrorCode::kConflict, "oauth token row changed meanwhile");
      out.row = std::move(row);
      out.leased = true;
      return {};
    });
    if (!st) return st.error();
    return out;
  }

  Result<bool> CompleteOAuthLease(const std::string& project_id, const std::string& name, int64_t generation,
                                  const std::string& worker_id, const std::string& access_ciphertext,
                                  const std::string& expires_at, const std::string& refresh_ciphertext) override {
    bool stored = false;
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "UPDATE oauth_tokens SET access_ciphertext = $5, expires_at = $6, "
          "refresh_ciphertext = COALESCE($7, refresh_ciphertext), lease_holder = '', lease_until = '', "
          "updated_at = $8 WHERE project_id = $1 AND name = $2 AND generation = $3 AND lease_holder = $4 "
          "RETURNING generation",
          {Param::Text(project_id), Param::Text(name), Param::Int(generation), Param::Text(worker_id),
           Param::Blob(access_ciphertext), Param::Text(expires_at), BlobOrNull(refresh_ciphertext),
           Param::Text(NowRfc3339())});
      if (!rows) return rows.error();
      stored = !rows->empty();
      return {};
    });
    if (!st) return st.error();
    return stored;
  }

  Result<bool> ReleaseOAuthLease(const std::string& project_id, const std::string& name, int64_t generation,
                                 const std::string& worker_id) override {
    bool released = false;
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(
          "UPDATE oauth_tokens SET lease_holder = '', lease_until = '' "
          "WHERE project_id = $1 AND name = $2 AND generation = $3 AND lease_holder = $4 RETURNING generation",
          {Param::Text(project_id), Param::Text(name), Param::Int(generation), Param::Text(worker_id)});
      if (!rows) return rows.error();
      released = !rows->empty();
      return {};
    });
    if (!st) return st.error();
    return released;
  }

  Result<OAuthTokenRow> GetOAuthToken(const std::string& project_id, const std::string& name) override {
    OAuthTokenRow out;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(std::string("SELECT ") + kOAuthColumns + " FROM oauth_tokens WHERE project_id = $1 AND name = $2",
                          {Param::Text(project_id), Param::Text(name)});
      if (!rows) return rows.error();
      if (rows->empty()) return MakeError(ErrorCode::kNotFound, "no oauth token state for " + name);
      out = OAuthFromRow(rows->front());
      return {};
    });
    if (!st) return st.error();
    return out;
  }

  Result<std::vector<OAuthTokenRow>> ListAllOAuthTokens() override {
    std::vector<OAuthTokenRow> out;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(std::string("SELECT ") + kOAuthColumns + " FROM oauth_tokens ORDER BY project_id, name");
      if (!rows) return rows.error();
      for (const Row& r : *rows) out.push_back(OAuthFromRow(r));
      return {};
    });
    if (!st) return st.error();
    return out;
  }

  Result<bool> ReplaceOAuthCiphertexts(const std::string& project_id, const std::string& name,
                                       const std::string& old_access, const std::string& old_refresh,
                                       const std::string& new_access, const std::string& new_refresh) override {
    // NULL never equals anything: an absent token is matched with IS NULL
    // (and gets no parameter: PostgreSQL cannot type an unused one).
    std::vector<Param> params{Param::Text(project_id), Param::Text(name), BlobOrNull(new_access),
                              BlobOrNull(new_refresh)};
    std::string sql =
        "UPDATE oauth_tokens SET access_ciphertext = $3, refresh_ciphertext = $4 "
        "WHERE project_id = $1 AND name = $2";
    for (const auto& [column, old] : {std::pair<const char*, const std::string*>{"access_ciphertext", &old_access},
                                      {"refresh_ciphertext", &old_refresh}}) {
      if (old->empty()) {
        sql += std::string(" AND ") + column + " IS NULL";
      } else {
        params.push_back(Param::Blob(*old));
        sql += std::string(" AND ") + column + " = $" + std::to_string(params.size());
      }
    }
    sql += " RETURNING generation";
    bool replaced = false;
    Status st = db_->InTransaction(true, [&](Tx& tx) -> Status {
      // updated_at is left alone: the tokens did not change.
      auto rows = tx.Exec(sql, params);
      if (!rows) return rows.error();
      replaced = !rows->empty();
      return {};
    });
    if (!st) return st.error();
    return replaced;
  }

  Result<std::vector<TemplateRow>> QueryTemplates(const std::string& sql, const std::vector<Param>& params) {
    std::vector<TemplateRow> out;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(sql, params);
      if (!rows) return rows.error();
      for (const auto& r : *rows) out.push_back(TemplateFromRow(r));
      return {};
    });
    if (!st) return st.error();
    return out;
  }

  Result<std::vector<CheckpointRow>> QueryCheckpoints(const std::string& sql, const std::vector<Param>& params) {
    std::vector<CheckpointRow> out;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(sql, params);
      if (!rows) return rows.error();
      for (const auto& r : *rows) out.push_back(CheckpointFromRow(r));
      return {};
    });
    if (!st) return st.error();
    return out;
  }

  Result<std::vector<SandboxRow>> QuerySandboxes(const std::string& sql, const std::vector<Param>& params) {
    std::vector<SandboxRow> out;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(sql, params);
      if (!rows) return rows.error();
      for (const auto& r : *rows) {
        out.push_back(SandboxFromRow(r));
      }
      return {};
    });
    if (!st) return st.error();
    return out;
  }

  Result<std::vector<SecretRow>> QuerySecrets(const std::string& sql, const std::vector<Param>& params,
                                              bool with_ciphertext) {
    std::vector<SecretRow> out;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec(sql, params);
      if (!rows) return rows.error();
      for (const auto& r : *rows) out.push_back(SecretFromRow(r, with_ciphertext));
      return {};
    });
    if (!st) return st.error();
    return out;
  }

  std::unique_ptr<Db> db_;
  const int version_;
};

}  // namespace

namespace internal {

Result<std::unique_ptr<Db>> OpenDb(const std::string& url) {
  if (url.starts_with("sqlite://")) {
    const std::string path = url.substr(std::string("sqlite://").size());
    if (path.empty() || path.front() != '/') {
      return MakeError(ErrorCode::kInvalidArgument,
                       "--db: SQLite URL needs an absolute path, e.g. sqlite:///var/lib/osb/osb.db");
    }
    return OpenSqlite(path);
  }
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return OpenPostgres(url);
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "--db: unsupported database URL (use sqlite:///abs/path.db or postgresql://...)");
}

}  // namespace internal

Result<std::unique_ptr<Store>> OpenStore(const std::string& url) {
  auto db = internal::OpenDb(url);
  if (!db) return db.error();
  auto version = internal::ApplyMigrations(**db);
  if (!version) return version.error();
  return std::unique_ptr<Store>(std::make_unique<SqlStore>(std::move(*db), *version));
}

Result<int> MigrateStore(const std::string& url) {
  auto db = internal::OpenDb(url);
  if (!db) return db.error();
  return internal::ApplyMigrations(**db);
}

std::string NowRfc3339() { return Rfc3339Ms(std::chrono::system_clock::now()); }

std::string Rfc3339Ms(std::chrono::system_clock::time_point now) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

std::string NewId(const std::string& prefix) { return prefix + "_" + crypto::RandomHex(12); }

}  // namespace osb::store
