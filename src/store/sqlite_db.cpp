// SQLite backend of the Db seam: one connection guarded by a mutex (SQLite
// serialises writers anyway), WAL journal, foreign keys on, busy timeout so a
// second process (osb rewrap, osb migrate) waits instead of failing.
#include <sqlite3.h>

#include <mutex>

#include "common/log.h"
#include "store/db.h"

namespace osb::store::internal {
namespace {

constexpr int kBusyTimeoutMs = 10000;

Error SqliteError(sqlite3* db, int rc, std::string_view what) {
  const int ext = sqlite3_extended_errcode(db);
  if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return MakeError(ErrorCode::kAlreadyExists, "already exists");
  }
  if (ext == SQLITE_CONSTRAINT_FOREIGNKEY) {
    return MakeError(ErrorCode::kFailedPrecondition, "referenced by another row");
  }
  const auto code = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? ErrorCode::kUnavailable
                                                               : ErrorCode::kInternal;
  // sqlite3_errmsg describes the failure (e.g. "no such table"), not row data.
  return MakeError(code, std::string("sqlite: ") + std::string(what) + ": " + sqlite3_errmsg(db));
}

class SqliteTx final : public Tx {
 public:
  explicit SqliteTx(sqlite3* db) : db_(db) {}

  Result<std::vector<Row>> Exec(std::string_view sql, const std::vector<Param>& params) override {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "prepare");
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string name = "$" + std::to_string(i + 1);
      const int index = sqlite3_bind_parameter_index(stmt, name.c_str());
      if (index == 0) continue;  // parameter not used by this statement
      const Param& p = params[i];
      switch (p.kind) {
        case Param::Kind::kNull: rc = sqlite3_bind_null(stmt, index); break;
        case Param::Kind::kInt: rc = sqlite3_bind_int64(stmt, index, p.integer); break;
        case Param::Kind::kText:
          rc = sqlite3_bind_text(stmt, index, p.text.data(), static_cast<int>(p.text.size()),
                                 SQLITE_TRANSIENT);
          break;
        case Param::Kind::kBlob:
          rc = sqlite3_bind_blob(stmt, index, p.text.data(), static_cast<int>(p.text.size()),
                                 SQLITE_TRANSIENT);
          break;
      }
      if (rc != SQLITE_OK) return SqliteError(db_, rc, "bind");
    }
    std::vector<Row> rows;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      const int n = sqlite3_column_count(stmt);
      Row row;
      row.reserve(n);
      for (int c = 0; c < n; ++c) {
        if (sqlite3_column_type(stmt, c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
          continue;
        }
        const void* data = sqlite3_column_blob(stmt, c);
        const int len = sqlite3_column_bytes(stmt, c);
        row.emplace_back(std::string(static_cast<const char*>(data), data ? len : 0));
      }
      rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "step");
    return rows;
  }

 private:
  sqlite3* db_;
};

class SqliteDb final : public Db {
 public:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  ~SqliteDb() override { sqlite3_close_v2(db_); }

  Dialect dialect() const override { return Dialect::kSqlite; }

  Status InTransaction(bool write, const std::function<Status(Tx&)>& fn) override {
    std::lock_guard lock(mu_);
    SqliteTx tx(db_);
    auto begun = tx.Exec(write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED", {});
    if (!begun) return begun.error();
    Status st = fn(tx);
    if (st.ok()) {
      auto committed = tx.Exec("COMMIT", {});
      if (committed) return {};
      st = committed.error();
    }
    (void)tx.Exec("ROLLBACK", {});
    return st;
  }

 private:
  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace

Result<std::unique_ptr<Db>> OpenSqlite(const std::string& path) {
  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close_v2(raw);
    return MakeError(ErrorCode::kUnavailable, "cannot open SQLite database " + path + ": " + msg);
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  auto db = std::make_unique<SqliteDb>(raw);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON",
                             "PRAGMA synchronous=NORMAL"}) {
    char* err = nullptr;
    if (sqlite3_exec(raw, pragma, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      return MakeError(ErrorCode::kUnavailable, "cannot configure SQLite database " + path + ": " + msg);
    }
  }
  return std::unique_ptr<Db>(std::move(db));
}

}  // namespace osb::store::internal
