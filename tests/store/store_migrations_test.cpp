// The migration runner (store/migrations.cpp) through its test seam, on the
// backend selected by OSB_TEST_DB (registered for both SQLite and
// PostgreSQL): every migration whose version schema_migrations does not
// record is applied, in version order, even when a higher version was
// applied first (two branches, a hotfix numbered below the newest one).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "store/db.h"
#include "test_db.h"

namespace osb::store::internal {
namespace {

class StoreMigrationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = OpenDb(osb::testing::FreshDatabaseUrl());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    db_ = std::move(*opened);
  }
  std::set<int> Recorded() {
    std::set<int> out;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec("SELECT version FROM schema_migrations");
      if (!rows) return rows.error();
      for (const Row& r : *rows) out.insert(std::stoi(r.at(0).value_or("0")));
      return {};
    });
    EXPECT_TRUE(st.ok()) << st.error().message;
    return out;
  }
  // The rows of t2 (created by migration 2, filled by migration 4).
  Result<std::vector<Row>> T2() {
    std::vector<Row> out;
    Status st = db_->InTransaction(false, [&](Tx& tx) -> Status {
      auto rows = tx.Exec("SELECT x FROM t2 ORDER BY x");
      if (!rows) return rows.error();
      out = std::move(*rows);
      return {};
    });
    if (!st) return st.error();
    return out;
  }
  std::unique_ptr<Db> db_;
};

const Migration kOne{1, "t1", {"CREATE TABLE t1 (x INTEGER)"}};
const Migration kTwo{2, "t2 (the late one)", {"CREATE TABLE t2 (x INTEGER, b {blob})"}};
const Migration kThree{3, "t3", {"CREATE TABLE t3 (x INTEGER)"}};
// Needs 2: fails if 2 has not run before it.
const Migration kFour{4, "fills t2", {"INSERT INTO t2 (x) VALUES (4)"}};

TEST_F(StoreMigrationsTest, AMissingMiddleVersionIsAppliedLater) {
  const std::vector<Migration> first{kOne, kThree};
  auto v = ApplyMigrations(*db_, first);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, 3);
  EXPECT_EQ(Recorded(), (std::set<int>{1, 3}));
  EXPECT_FALSE(T2().ok());  // no t2 yet

  // Migration 2 appears below the newest applied one (given out of order:
  // the runner orders by version), with 4 that depends on it.
  const std::vector<Migration> later{kFour, kThree, kTwo, kOne};
  v = ApplyMigrations(*db_, later);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, 4);
  EXPECT_EQ(Recorded(), (std::set<int>{1, 2, 3, 4}));
  auto t2 = T2();
  ASSERT_TRUE(t2.ok()) << t2.error().message;
  ASSERT_EQ(t2->size(), 1u);
  EXPECT_EQ(t2->front().at(0), "4");

  // Idempotent: nothing runs again (a re-run of 1 or 4 would fail / add a row).
  v = ApplyMigrations(*db_, later);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, 4);
  EXPECT_EQ(T2()->size(), 1u);
}

TEST_F(StoreMigrationsTest, AFailingMigrationLeavesNothingApplied) {
  const Migration broken{5, "broken", {"CREATE TABLE t5 (x INTEGER)", "NOT SQL AT ALL"}};
  const std::vector<Migration> all{kOne, broken};
  auto v = ApplyMigrations(*db_, all);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("migration 5"), std::string::npos) << v.error().message;
  // One transaction: not even migration 1 (nor the bookkeeping table) stayed.
  const std::vector<Migration> just_one{kOne};
  v = ApplyMigrations(*db_, just_one);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(Recorded(), (std::set<int>{1}));
}

TEST_F(StoreMigrationsTest, TheRealMigrationsRecordEveryVersion) {
  auto v = ApplyMigrations(*db_);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_GE(*v, 13);
  EXPECT_EQ(*Recorded().rbegin(), *v);
  auto again = ApplyMigrations(*db_);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *v);
}

}  // namespace
}  // namespace osb::store::internal
