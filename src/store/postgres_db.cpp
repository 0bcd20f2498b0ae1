// PostgreSQL backend of the Db seam, on libpq directly: a small pool of
// connections (one per concurrent transaction), parameters sent out of band
// (never spliced into SQL), bytea in binary format.
#include <libpq-fe.h>

#include <condition_variable>
#include <mutex>

#include "common/hex.h"
#include "store/db.h"

namespace osb::store::internal {
namespace {

constexpr size_t kPoolSize = 8;
constexpr Oid kByteaOid = 17;

using PgResult = std::unique_ptr<PGresult, void (*)(PGresult*)>;

std::string ConnError(PGconn* conn) {
  std::string msg = conn ? PQerrorMessage(conn) : "out of memory";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

class PgTx final : public Tx {
 public:
  explicit PgTx(PGconn* conn) : conn_(conn) {}

  Result<std::vector<Row>> Exec(std::string_view sql, const std::vector<Param>& params) override {
    std::vector<std::string> ints(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<int> lengths(params.size(), 0);
    std::vector<int> formats(params.size(), 0);
    std::vector<Oid> types(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
      const Param& p = params[i];
      switch (p.kind) {
        case Param::Kind::kNull: break;
        case Param::Kind::kInt:
          ints[i] = std::to_string(p.integer);
          values[i] = ints[i].c_str();
          break;
        case Param::Kind::kText: values[i] = p.text.c_str(); break;
        case Param::Kind::kBlob:
          values[i] = p.text.data();
          lengths[i] = static_cast<int>(p.text.size());
          formats[i] = 1;
          types[i] = kByteaOid;
          break;
      }
    }
    const std::string query(sql);
    PgResult res(PQexecParams(conn_, query.c_str(), static_cast<int>(params.size()), types.data(),
                              values.data(), lengths.data(), formats.data(), 0),
                 PQclear);
    const auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const char* state = res ? PQresultErrorField(res.get(), PG_DIAG_SQLSTATE) : nullptr;
      const std::string code = state ? state : "";
      if (code == "23505") return MakeError(ErrorCode::kAlreadyExists, "already exists");
      if (code == "23503") return MakeError(ErrorCode::kFailedPrecondition, "referenced by another row");
      if (PQstatus(conn_) != CONNECTION_OK) broken_ = true;
      // The primary message describes the failure; PG_DIAG_MESSAGE_DETAIL
      // (which can quote row values) is deliberately not included.
      const char* primary = res ? PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
      return MakeError(broken_ ? ErrorCode::kUnavailable : ErrorCode::kInternal,
                       std::string("postgres: ") + (primary ? primary : ConnError(conn_)));
    }
    std::vector<Row> rows;
    const int n_rows = PQntuples(res.get());
    const int n_cols = PQnfields(res.get());
    rows.reserve(n_rows);
    for (int r = 0; r < n_rows; ++r) {
      Row row;
      row.reserve(n_cols);
      for (int c = 0; c < n_cols; ++c) {
        if (PQgetisnull(res.get(), r, c)) {
          row.emplace_back(std::nullopt);
          continue;
        }
        std::string_view text(PQgetvalue(res.get(), r, c), PQgetlength(res.get(), r, c));
        if (PQftype(res.get(), c) == kByteaOid && text.starts_with("\\x")) {
          auto bytes = HexDecode(text.substr(2));
          if (!bytes) return MakeError(ErrorCode::kDataLoss, "postgres: malformed bytea value");
          row.emplace_back(std::string(bytes->begin(), bytes->end()));
        } else {
          row.emplace_back(std::string(text));
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  bool broken() const { return broken_; }

 private:
  PGconn* conn_;
  bool broken_ = false;
};

class PostgresDb final : public Db {
 public:
  explicit PostgresDb(std::string url) : url_(std::move(url)) {}
  ~PostgresDb() override {
    for (PGconn* c : idle_) PQfinish(c);
  }

  Dialect dialect() const override { return Dialect::kPostgres; }

  Result<PGconn*> Acquire() {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !idle_.empty() || open_ < kPoolSize; });
      if (!idle_.empty()) {
        PGconn* c = idle_.back();
        idle_.pop_back();
        return c;
      }
      ++open_;
    }
    PGconn* c = PQconnectdb(url_.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      std::string msg = ConnError(c);
      PQfinish(c);
      Release(nullptr);
      return MakeError(ErrorCode::kUnavailable, "cannot connect to PostgreSQL: " + msg);
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
  }

  // Returns a connection to the pool; nullptr (or a broken one) frees a slot.
  void Release(PGconn* c) {
    std::lock_guard lock(mu_);
    if (c && PQstatus(c) == CONNECTION_OK) {
      idle_.push_back(c);
    } else {
      if (c) PQfinish(c);
      --open_;
    }
    cv_.notify_one();
  }

  Status InTransaction(bool /*write*/, const std::function<Status(Tx&)>& fn) override {
    auto conn = Acquire();
    if (!conn) return conn.error();
    PgTx tx(*conn);
    Status st;
    auto begun = tx.Exec("BEGIN", {});
    if (!begun) {
      st = begun.error();
    } else {
      st = fn(tx);
      if (st.ok()) {
        auto committed = tx.Exec("COMMIT", {});
        if (!committed) st = committed.error();
      } else {
        (void)tx.Exec("ROLLBACK", {});
      }
    }
    Release(*conn);
    return st;
  }

 private:
  const std::string url_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PGconn*> idle_;
  size_t open_ = 0;
};

}  // namespace

Result<std::unique_ptr<Db>> OpenPostgres(const std::string& url) {
  auto db = std::make_unique<PostgresDb>(url);
  auto probe = db->Acquire();  // fail fast with a clear message
  if (!probe) return probe.error();
  db->Release(*probe);
  return std::unique_ptr<Db>(std::move(db));
}

}  // namespace osb::store::internal
