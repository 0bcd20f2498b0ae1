// oauth2-refresh coordination rows (issue 16, migration 12) on the backend
// selected by OSB_TEST_DB (registered for both SQLite and PostgreSQL): the
// refresh lease is a compare-and-set that exactly one caller wins, even
// from many threads (= many control-plane replicas) at once.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "store/store.h"
#include "store_fixture.h"
#include "test_db.h"

namespace osb::store {
namespace {

class StoreOAuthTest : public osb::testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    if (HasFatalFailure()) return;
    auto org = store_->EnsureOrg("a");
    ASSERT_TRUE(org.ok());
    Project p;
    p.id = NewId("prj");
    p.org_id = org->id;
    p.name = "web";
    p.template_id = "base";
    p.created_at = p.updated_at = NowRfc3339();
    auto made = store_->CreateProject(p);
    ASSERT_TRUE(made.ok()) << made.error().message;
    project_ = made->id;
  }
  Result<OAuthAcquire> Acquire(const std::string& worker, const std::string& fp = "fp1", int now_s = 100) {
    return store_->AcquireOAuthLease(project_, "GH", fp, worker, T(now_s), T(now_s + 30), T(now_s + 30));
  }
  // Fixed-width times that compare as text.
  static std::string T(int seconds) {
    return Rfc3339Ms(std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000 + seconds)));
  }
  std::string project_;
};

TEST_F(StoreOAuthTest, SchemaHasMigrationTwelve) { EXPECT_GE(*store_->SchemaVersion(), 12); }

TEST_F(StoreOAuthTest, OneLeaseAtATimeThenTheStoredTokenIsReturned) {
  auto a = Acquire("w1");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(a->leased);
  EXPECT_EQ(a->row.lease_holder, "w1");
  EXPECT_TRUE(a->row.refresh_ciphertext.empty());  // the secret's own refresh token
  // Another worker while the lease runs: no lease (wait and ask again).
  auto b = Acquire("w2");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->leased);
  EXPECT_EQ(b->row.lease_holder, "w1");
  // The holder completes with a rotated refresh token (binary ciphertexts).
  const std::string access("acc\0\xff", 5), refresh("ref\0\x01", 5);
  auto done = store_->CompleteOAuthLease(project_, "GH", a->row.generation, "w1", access, T(3700), refresh);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_TRUE(*done);
  // Completing twice (or by another worker) stores nothing.
  EXPECT_FALSE(*store_->CompleteOAuthLease(project_, "GH", a->row.generation, "w1", "x", T(9999), "y"));
  auto c = Acquire("w2", "fp1", 200);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->leased);
  EXPECT_EQ(c->row.access_ciphertext, access);
  EXPECT_EQ(c->row.expires_at, T(3700));
  EXPECT_EQ(c->row.refresh_ciphertext, refresh);
  // Near expiry (within the margin): a new lease, which keeps the rotated token.
  auto d = Acquire("w2", "fp1", 3680);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->leased);
  EXPECT_EQ(d->row.refresh_ciphertext, refresh);
  EXPECT_GT(d->row.generation, a->row.generation);
  // A completion without a rotation keeps the stored refresh token.
  ASSERT_TRUE(*store_->CompleteOAuthLease(project_, "GH", d->row.generation, "w2", "acc2", T(7300), ""));
  auto row = store_->GetOAuthToken(project_, "GH");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->access_ciphertext, "acc2");
  EXPECT_EQ(row->refresh_ciphertext, refresh);
  EXPECT_TRUE(row->lease_holder.empty());
}

TEST_F(StoreOAuthTest, AnExpiredLeaseIsTakenOverAndTheOldHolderCannotComplete) {
  auto a = Acquire("w1", "fp1", 100);
  ASSERT_TRUE(a.ok() && a->leased);
  auto b = Acquire("w2", "fp1", 131);  // past w1's lease_until (130)
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->leased);
  EXPECT_FALSE(*store_->CompleteOAuthLease(project_, "GH", a->row.generation, "w1", "stale", T(9999), "r"));
  EXPECT_FALSE(*store_->ReleaseOAuthLease(project_, "GH", a->row.generation, "w1"));
  // A late completion of the holder whose lease ran out but was not taken over is kept.
  ASSERT_TRUE(*store_->CompleteOAuthLease(project_, "GH", b->row.generation, "w2", "acc", T(3700), "r2"));
  EXPECT_EQ(store_->GetOAuthToken(project_, "GH")->access_ciphertext, "acc");
}

TEST_F(StoreOAuthTest, ReleaseLetsTheNextCallerLeaseAtOnce) {
  auto a = Acquire("w1");
  ASSERT_TRUE(a.ok() && a->leased);
  EXPECT_TRUE(*store_->ReleaseOAuthLease(project_, "GH", a->row.generation, "w1"));
  auto b = Acquire("w2");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->leased);
}

TEST_F(StoreOAuthTest, SettingTheSecretAgainResetsTokensAndLease) {
  auto a = Acquire("w1");
  ASSERT_TRUE(a.ok() && a->leased);
  ASSERT_TRUE(*store_->CompleteOAuthLease(project_, "GH", a->row.generation, "w1", "acc", T(3700), "rotated"));
  // A new material generation (PUT of a new value): nothing of the old one is used.
  auto b = Acquire("w2", "fp2", 200);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->leased);
  EXPECT_TRUE(b->row.access_ciphertext.empty());
  EXPECT_TRUE(b->row.refresh_ciphertext.empty());
  EXPECT_EQ(b->row.material_fp, "fp2");
  // Even a lease running under the old material is dropped.
  auto c = Acquire("w3", "fp3", 201);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->leased);
  EXPECT_FALSE(*store_->CompleteOAuthLease(project_, "GH", b->row.generation, "w2", "old", T(3700), ""));
}

TEST_F(StoreOAuthTest, ConcurrentAcquirersOnSeparateConnectionsGetExactlyOneLease) {
  // Each thread opens its own store (as separate replicas would).
  constexpr int kThreads = 6;
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < kThreads; ++i) {
    auto s = OpenStore(url_);
    ASSERT_TRUE(s.ok()) << s.error().message;
    stores.push_back(std::move(*s));
  }
  std::atomic<int> leased{0}, failed{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      auto r = stores[i]->AcquireOAuthLease(project_, "GH", "fp1", "w" + std::to_string(i), T(100), T(130), T(130));
      if (!r.ok()) {
        ++failed;  // a serialisation failure is allowed, never a second lease
      } else if (r->leased) {
        ++leased;
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(leased.load(), 1);
  EXPECT_EQ(failed.load(), 0);
}

// osb rewrap's compare-and-set: the ciphertexts move only while the row
// still holds what rewrap read; a refresh in between wins.
TEST_F(StoreOAuthTest, ReplaceCiphertextsIsACompareAndSet) {
  auto a = Acquire("w1");
  ASSERT_TRUE(a.ok() && a->leased);
  const std::string access("acc\0\xff", 5), refresh("ref\0\x01", 5);
  ASSERT_TRUE(*store_->CompleteOAuthLease(project_, "GH", a->row.generation, "w1", access, T(3700), refresh));
  auto listed = store_->ListAllOAuthTokens();
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().project_id, project_);
  EXPECT_EQ(listed->front().access_ciphertext, access);
  EXPECT_EQ(listed->front().refresh_ciphertext, refresh);

  // Stale expectations (either column) change nothing.
  EXPECT_FALSE(*store_->ReplaceOAuthCiphertexts(project_, "GH", "other", refresh, "A2", "R2"));
  EXPECT_FALSE(*store_->ReplaceOAuthCiphertexts(project_, "GH", access, "other", "A2", "R2"));
  EXPECT_FALSE(*store_->ReplaceOAuthCiphertexts(project_, "GH", access, "", "A2", ""));
  EXPECT_FALSE(*store_->ReplaceOAuthCiphertexts(project_, "NOPE", access, refresh, "A2", "R2"));
  auto row = store_->GetOAuthToken(project_, "GH");
  EXPECT_EQ(row->access_ciphertext, access);
  EXPECT_EQ(row->refresh_ciphertext, refresh);

  // The current pair: replaced; lease bookkeeping and expiry untouched.
  auto moved = store_->ReplaceOAuthCiphertexts(project_, "GH", access, refresh, std::string("A2\0", 3), "R2");
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_TRUE(*moved);
  row = store_->GetOAuthToken(project_, "GH");
  EXPECT_EQ(row->access_ciphertext, std::string("A2\0", 3));
  EXPECT_EQ(row->refresh_ciphertext, "R2");
  EXPECT_EQ(row->expires_at, T(3700));
  EXPECT_EQ(row->generation, a->row.generation);

  // A concurrent refresh (a new lease completed) between rewrap's read and
  // its write: the refresh's token stays.
  auto b = Acquire("w2", "fp1", 3680);
  ASSERT_TRUE(b.ok() && b->leased);
  ASSERT_TRUE(*store_->CompleteOAuthLease(project_, "GH", b->row.generation, "w2", "fresh", T(7300), ""));
  EXPECT_FALSE(*store_->ReplaceOAuthCiphertexts(project_, "GH", std::string("A2\0", 3), "R2", "A3", "R3"));
  row = store_->GetOAuthToken(project_, "GH");
  EXPECT_EQ(row->access_ciphertext, "fresh");
  EXPECT_EQ(row->refresh_ciphertext, "R2");
}

TEST_F(StoreOAuthTest, ReplaceCiphertextsMatchesAbsentTokens) {
  // A leased row that never completed: no tokens at all (NULL columns).
  ASSERT_TRUE(Acquire("w1").ok());
  EXPECT_FALSE(*store_->ReplaceOAuthCiphertexts(project_, "GH", "x", "", "A", ""));
  EXPECT_TRUE(*store_->ReplaceOAuthCiphertexts(project_, "GH", "", "", "", ""));
  // Only an access token (no rotation yet): the refresh column stays NULL.
  auto b = Acquire("w2", "fp1", 131);
  ASSERT_TRUE(b.ok() && b->leased);
  ASSERT_TRUE(*store_->CompleteOAuthLease(project_, "GH", b->row.generation, "w2", "acc", T(3700), ""));
  EXPECT_TRUE(*store_->ReplaceOAuthCiphertexts(project_, "GH", "acc", "", "acc2", ""));
  auto row = store_->GetOAuthToken(project_, "GH");
  EXPECT_EQ(row->access_ciphertext, "acc2");
  EXPECT_TRUE(row->refresh_ciphertext.empty());
  // Still NULL (not an empty blob): a later rotation-less completion keeps it absent.
  EXPECT_EQ(osb::testing::RawQuery(url_, "SELECT COUNT(*) FROM oauth_tokens WHERE refresh_ciphertext IS NULL")
                .at(0)
                .at(0),
            "1");
}

TEST_F(StoreOAuthTest, DeletingTheProjectDeletesItsRows) {
  ASSERT_TRUE(Acquire("w1").ok());
  auto org = store_->EnsureOrg("a");
  ASSERT_TRUE(store_->DeleteProject(org->id, project_).ok());
  EXPECT_EQ(store_->GetOAuthToken(project_, "GH").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace osb::store
