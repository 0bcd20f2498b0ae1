// Internal seam under the Store: a minimal SQL connection abstraction so the
// store's queries are written once and run on both SQLite and PostgreSQL.
// SQL uses $1, $2 … placeholders (SQLite accepts them as named parameters).
// Not part of the public interface; use store/store.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace osb::store::internal {

struct Param {
  enum class Kind { kNull, kText, kInt, kBlob };
  Kind kind = Kind::kNull;
  std::string text;  // text, or raw bytes for kBlob
  int64_t integer = 0;

  static Param Null() { return {}; }
  static Param Text(std::string s) { return {Kind::kText, std::move(s), 0}; }
  static Param Int(int64_t v) { return {Kind::kInt, {}, v}; }
  static Param Blob(std::string bytes) { return {Kind::kBlob, std::move(bytes), 0}; }
};

// A result row: each column as text (integers in decimal, blobs as raw
// bytes), nullopt for NULL.
using Row = std::vector<std::optional<std::string>>;

// One open transaction. Exec errors map constraint failures to
// kAlreadyExists (unique) and kFailedPrecondition (foreign key); messages
// never include parameter values.
class Tx {
 public:
  virtual ~Tx() = default;
  virtual Result<std::vector<Row>> Exec(std::string_view sql, const std::vector<Param>& params = {}) = 0;
};

enum class Dialect { kSqlite, kPostgres };

class Db {
 public:
  virtual ~Db() = default;
  virtual Dialect dialect() const = 0;
  // Runs fn inside one transaction; commits if it returns ok, else rolls back
  // and returns its error. `write` hints that the transaction writes (SQLite
  // takes the write lock up front so it never fails to upgrade).
  virtual Status InTransaction(bool write, const std::function<Status(Tx&)>& fn) = 0;
};

Result<std::unique_ptr<Db>> OpenSqlite(const std::string& path);
Result<std::unique_ptr<Db>> OpenPostgres(const std::string& url);

// The backend named by a URL (sqlite:///abs/path.db or postgresql://...),
// without applying migrations.
Result<std::unique_ptr<Db>> OpenDb(const std::string& url);

// One schema migration (store/migrations.cpp). `{blob}` in a statement
// becomes BLOB (SQLite) or BYTEA (PostgreSQL).
struct Migration {
  int version;
  const char* description;
  std::vector<const char*> statements;
};

// Applies pending migrations (store/migrations.cpp); returns the highest
// applied version.
Result<int> ApplyMigrations(Db& db);
// The same runner over `migrations` (a test seam): one transaction (under
// a PostgreSQL advisory lock) applies, in version order, every migration
// whose version schema_migrations does not record, gaps included.
Result<int> ApplyMigrations(Db& db, std::span<const Migration> migrations);

}  // namespace osb::store::internal
