// Versioned schema migrations, applied in order inside one transaction each.
// Each migration is written once; `{blob}` becomes BLOB (SQLite) or BYTEA
// (PostgreSQL), the only type that differs. Everything else (TEXT ids and
// RFC 3339 timestamps, INTEGER numbers, JSON arrays as TEXT, partial unique
// indexes, ON DELETE rules) means the same on both backends.
//
// Never edit a released migration: append a new one. Versions may have
// gaps and may arrive out of order (two branches): every version missing
// from schema_migrations is applied, lowest first.
#include <algorithm>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "store/db.h"
#include "store/store.h"

namespace osb::store::internal {
namespace {

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> migrations = {
      {1,
       "orgs, api keys, projects, secret groups, secrets",
       {
           "CREATE TABLE orgs (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
           "created_at TEXT NOT NULL)",
           // key_hash: SHA-256 hex of the API key; the key itself is never stored.
           "CREATE TABLE api_keys (key_hash TEXT PRIMARY KEY, "
           "org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE, "
           "label TEXT NOT NULL, created_at TEXT NOT NULL)",
           "CREATE TABLE projects (id TEXT PRIMARY KEY, "
           "org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE, "
           "name TEXT NOT NULL, template_id TEXT NOT NULL, cpu_count INTEGER NOT NULL, "
           "memory_mb INTEGER NOT NULL, timeout_sec INTEGER NOT NULL, "
           "egress_allowlist TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
           "UNIQUE (org_id, name))",
           // A project's own group has project_id set; org-level groups have it
           // NULL and a unique name per org.
           "CREATE TABLE secret_groups (id TEXT PRIMARY KEY, "
           "org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE, "
           "project_id TEXT REFERENCES projects(id) ON DELETE CASCADE, "
           "name TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
           "CREATE UNIQUE INDEX secret_groups_org_name ON secret_groups (org_id, name) "
           "WHERE project_id IS NULL",
           "CREATE UNIQUE INDEX secret_groups_project ON secret_groups (project_id) "
           "WHERE project_id IS NOT NULL",
           // Attachments of org-level groups to projects, in resolution order.
           // RESTRICT: an attached group cannot vanish under a project.
           "CREATE TABLE project_secret_groups ("
           "project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE, "
           "group_id TEXT NOT NULL REFERENCES secret_groups(id) ON DELETE RESTRICT, "
           "position INTEGER NOT NULL, PRIMARY KEY (project_id, group_id))",
           // ciphertext: keyring output (header names key_id); AAD binds
           // org id, group id and name, so a copied ciphertext fails to decrypt.
           "CREATE TABLE org_secrets ("
           "group_id TEXT NOT NULL REFERENCES secret_groups(id) ON DELETE CASCADE, "
           "name TEXT NOT NULL, ciphertext {blob} NOT NULL, key_id TEXT NOT NULL, "
           "allowed_hosts TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
           "PRIMARY KEY (group_id, name))",
           "CREATE INDEX org_secrets_key_id ON org_secrets (key_id)",
       }},
      {2,
       "sandboxes and workers (scheduling)",
       {
           "CREATE TABLE workers (id TEXT PRIMARY KEY, address TEXT NOT NULL, "
           "capacity INTEGER NOT NULL, last_heartbeat TEXT NOT NULL)",
           "CREATE TABLE sandboxes (id TEXT PRIMARY KEY, "
           "org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE, "
           "project_id TEXT REFERENCES projects(id) ON DELETE SET NULL, "
           "worker_id TEXT REFERENCES workers(id) ON DELETE SET NULL, "
           "status TEXT NOT NULL, config TEXT NOT NULL, created_at TEXT NOT NULL, "
           "ended_at TEXT)",
           "CREATE INDEX sandboxes_org ON sandboxes (org_id)",
       }},
      {3,
       "worker liveness, CPU and memory capacity in the store (many replicas)",
       {
           // 0 = not limited (a worker that does not report the figure).
           "ALTER TABLE workers ADD COLUMN cpu_count INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE workers ADD COLUMN memory_mb INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE workers ADD COLUMN registered_at TEXT NOT NULL DEFAULT ''",
           // What each sandbox holds on its worker (0 for rows made before v3).
           "ALTER TABLE sandboxes ADD COLUMN cpu_count INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE sandboxes ADD COLUMN memory_mb INTEGER NOT NULL DEFAULT 0",
           "CREATE INDEX sandboxes_worker_status ON sandboxes (worker_id, status)",
           "CREATE INDEX sandboxes_org_status ON sandboxes (org_id, status)",
       }},
      {4,
       "API key scopes and expiry",
       {
           // Keys made before scopes existed could do everything: they stay admin.
           "ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin'",
           // RFC 3339 UTC in the store's fixed-width format (compares as text); NULL = never.
           "ALTER TABLE api_keys ADD COLUMN expires_at TEXT",
       }},
      {5,
       "checkpoints (saved sandbox files on a worker + resolved config)",
       {
           // No foreign key to sandboxes: a checkpoint outlives its sandbox
           // (forks). The archive lives on worker_id; size in bytes.
           "CREATE TABLE checkpoints (id TEXT PRIMARY KEY, "
           "org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE, "
           "sandbox_id TEXT NOT NULL, "
           "project_id TEXT REFERENCES projects(id) ON DELETE SET NULL, "
           "worker_id TEXT NOT NULL, kind TEXT NOT NULL, config TEXT NOT NULL, "
           "size_bytes BIGINT NOT NULL, created_at TEXT NOT NULL)",
           "CREATE INDEX checkpoints_org_sandbox ON checkpoints (org_id, sandbox_id)",
       }},
      {6,
       "projects' default diskMB (the writable disk of their image sandboxes)",
       {
           "ALTER TABLE projects ADD COLUMN disk_mb INTEGER NOT NULL DEFAULT 1024",
       }},
      {7,
       "sandbox metadata (a small string map set at create, issue 15)",
       {
           "ALTER TABLE sandboxes ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'",
       }},
      {8,
       "secret kinds (issue 16): kind, readable non-secret material, allowedRequests",
       {
           // kind: value | hmac | aws-sigv4 | oauth2-refresh. For non-value
           // kinds the ciphertext holds the whole material JSON; public_material
           // is its non-secret fields (JSON object text, '' for value secrets).
           "ALTER TABLE org_secrets ADD COLUMN kind TEXT NOT NULL DEFAULT 'value'",
           "ALTER TABLE org_secrets ADD COLUMN public_material TEXT NOT NULL DEFAULT ''",
           // JSON array of {host, methods, pathPrefix}; '[]' = every request.
           "ALTER TABLE org_secrets ADD COLUMN allowed_requests TEXT NOT NULL DEFAULT '[]'",
           // seal | refuse: what a request outside allowed_requests does.
           "ALTER TABLE org_secrets ADD COLUMN on_disallowed_request TEXT NOT NULL DEFAULT 'seal'",
       }},
      {9,
       "image templates (issue 14): an org's name for an imported image, by config digest",
       {
           // The tarball is <data-dir>/templates/sha256/<hex>.tar (one copy per
           // digest, shared by every org that imported it).
           "CREATE TABLE templates (id TEXT PRIMARY KEY, "
           "org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE, "
           "name TEXT NOT NULL, digest TEXT NOT NULL, size_bytes BIGINT NOT NULL, "
           "created_at TEXT NOT NULL, UNIQUE (org_id, name))",
           "CREATE INDEX templates_digest ON templates (digest)",
       }},
      {12,
       "oauth2-refresh coordination (issue 16): one access token and refresh lease per project secret",
       {
           // Per (project, secret name): the current access token and, when
           // the provider rotated it, the current refresh token, both
           // keyring ciphertexts (AAD binds project, name and which one);
           // NULL = none / the secret's own. material_fp is the material
           // generation (HMAC of the secret's material): a new value resets
           // the row. lease_*: the worker refreshing now (until, RFC 3339);
           // generation is bumped by every grant (the lease id, a CAS).
           "CREATE TABLE oauth_tokens ("
           "project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE, "
           "name TEXT NOT NULL, material_fp TEXT NOT NULL, generation BIGINT NOT NULL, "
           "access_ciphertext {blob}, expires_at TEXT NOT NULL, "
           "lease_holder TEXT NOT NULL, lease_until TEXT NOT NULL, updated_at TEXT NOT NULL, "
           "PRIMARY KEY (project_id, name))",
           "ALTER TABLE oauth_tokens ADD COLUMN refresh_ciphertext {blob}",
       }},
      {13,
       "the template a sandbox holds (atomic template delete vs sandbox create)",
       {
           // The org template's name (NULL: none). DeleteTemplate refuses in
           // its own transaction while a holding sandbox names it. Rows from
           // before v13 stay NULL: the control plane checks their config.
           "ALTER TABLE sandboxes ADD COLUMN template_name TEXT",
           "CREATE INDEX sandboxes_org_template ON sandboxes (org_id, template_name)",
       }},
  };
  return migrations;
}

std::string ForDialect(std::string sql, Dialect dialect) {
  const std::string token = "{blob}";
  const auto pos = sql.find(token);
  if (pos != std::string::npos) {
    sql.replace(pos, token.size(), dialect == Dialect::kSqlite ? "BLOB" : "BYTEA");
  }
  return sql;
}

}  // namespace

Result<int> ApplyMigrations(Db& db) { return ApplyMigrations(db, Migrations()); }

// Applies every migration whose version is not recorded in
// schema_migrations, in version order, so a version numbered below the
// newest applied one (two branches, a hotfix) is still applied. A plain
// MAX(version) would skip it forever.
Result<int> ApplyMigrations(Db& db, std::span<const Migration> migrations) {
  std::vector<const Migration*> ordered;
  for (const Migration& m : migrations) ordered.push_back(&m);
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration* a, const Migration* b) { return a->version < b->version; });
  int version = 0;
  Status st = db.InTransaction(true, [&](Tx& tx) -> Status {
    if (db.dialect() == Dialect::kPostgres) {
      // Serialise concurrent migrators (several servers starting at once).
      auto locked = tx.Exec("SELECT pg_advisory_xact_lock(7291864502)");
      if (!locked) return locked.error();
    }
    auto created = tx.Exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "description TEXT NOT NULL, applied_at TEXT NOT NULL)");
    if (!created) return created.error();
    auto rows = tx.Exec("SELECT version FROM schema_migrations");
    if (!rows) return rows.error();
    std::set<int> applied;
    for (const Row& row : *rows) applied.insert(std::stoi(row.at(0).value_or("0")));
    for (const Migration* m : ordered) {
      if (applied.contains(m->version)) continue;
      for (const char* statement : m->statements) {
        auto done = tx.Exec(ForDialect(statement, db.dialect()));
        if (!done) {
          return MakeError(done.error().code, "migration " + std::to_string(m->version) + ": " +
                                                  done.error().message);
        }
      }
      auto recorded = tx.Exec(
          "INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, "
          "$3)",
          {Param::Int(m->version), Param::Text(m->description), Param::Text(NowRfc3339())});
      if (!recorded) return recorded.error();
      applied.insert(m->version);
    }
    version = applied.empty() ? 0 : *applied.rbegin();
    return {};
  });
  if (!st) return st.error();
  return version;
}

}  // namespace osb::store::internal
