#include "test_db.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "crypto/random.h"

namespace osb::testing {
namespace {

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "test_db: %s\n", msg.c_str());
  std::abort();
}

std::string PgBaseUrl() {
  const char* env = std::getenv("OSB_TEST_DB");
  const std::string file = env && std::string(env).size() > 9 ? std::string(env).substr(9) : "";
  if (file.empty()) Die("OSB_TEST_DB=postgres:<url file> needs the postgres ctest fixture");
  std::ifstream in(file);
  std::string url;
  if (!std::getline(in, url) || url.empty()) Die(std::string("no PostgreSQL URL in ") + file);
  return url;
}

std::string WithDatabase(const std::string& url, const std::string& db) {
  const auto slash = url.rfind('/');
  return url.substr(0, slash + 1) + db;
}

}  // namespace

std::string TestBackend() {
  const char* b = std::getenv("OSB_TEST_DB");
  return b && std::string(b).starts_with("postgres") ? "postgres" : "sqlite";
}

// Temp dirs made by this process, removed when it exits.
struct TempDirs {
  std::mutex mu;
  std::vector<std::string> dirs;
  ~TempDirs() {
    for (const auto& d : dirs) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  }
};

std::string MakeTempDir() {
  static TempDirs made;
  std::string tmpl = "/tmp/osbtest.XXXXXX";
  if (!mkdtemp(tmpl.data())) Die("mkdtemp failed");
  std::lock_guard lock(made.mu);
  made.dirs.push_back(tmpl);
  return tmpl;
}

std::string FreshDatabaseUrl() {
  if (TestBackend() == "sqlite") return "sqlite://" + MakeTempDir() + "/osb.db";
  const std::string base = PgBaseUrl();
  const std::string name = "osbtest_" + crypto::RandomHex(8);
  RawQuery(base, "CREATE DATABASE " + name);
  return WithDatabase(base, name);
}

std::vector<std::vector<std::string>> RawQuery(const std::string& url, const std::string& sql) {
  std::vector<std::vector<std::string>> out;
  if (url.starts_with("sqlite://")) {
    sqlite3* db = nullptr;
    if (sqlite3_open(url.substr(9).c_str(), &db) != SQLITE_OK) Die("sqlite open failed");
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) Die(sqlite3_errmsg(db));
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        const void* p = sqlite3_column_blob(stmt, c);
        row.emplace_back(p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt, c)) : "");
      }
      out.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
  }
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) Die(std::string("connect: ") + PQerrorMessage(conn));
  PGresult* res = PQexec(conn, sql.c_str());
  const auto st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) Die(std::string("query: ") + PQerrorMessage(conn));
  for (int r = 0; r < PQntuples(res); ++r) {
    std::vector<std::string> row;
    for (int c = 0; c < PQnfields(res); ++c) row.emplace_back(PQgetvalue(res, r, c), PQgetlength(res, r, c));
    out.push_back(std::move(row));
  }
  PQclear(res);
  PQfinish(conn);
  return out;
}

}  // namespace osb::testing
