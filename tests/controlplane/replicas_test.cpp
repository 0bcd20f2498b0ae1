// Control-plane logic through the WorkerClient seam: two replicas (each its
// own store connection, worker pool and sandbox service) on one real
// database — SQLite and PostgreSQL, see tests/store/db_test.cmake — and two
// in-memory workers. Covers scheduling across replicas, capacity under
// concurrency, per-org limits, lost workers, reconcile, refresh fan-out and
// the exec executor's per-org cap. No root, no worker process.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "controlplane/projects.h"
#include "controlplane/resolution.h"
#include "controlplane/sandboxes.h"
#include "controlplane/secrets.h"
#include "controlplane/worker_pool.h"
#include "crypto/keyring.h"
#include "fake_worker.h"
#include "store/store.h"
#include "test_db.h"

namespace osb::controlplane {
namespace {

using osb::testing::FakeWorker;
using osb::testing::FakeWorkers;

constexpr const char* kKey = "0101010101010101010101010101010101010101010101010101010101010101";

// A clock the test moves; shared by every replica (they agree on the time).
struct FakeClock {
  std::atomic<int64_t> ms{1'800'000'000'000};
  Clock AsClock() {
    return [this] { return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms.load())); };
  }
  void Advance(std::chrono::seconds s) { ms += std::chrono::milliseconds(s).count(); }
};

// One `osb server` replica minus HTTP.
struct Replica {
  Replica(const std::string& url, std::shared_ptr<const crypto::Keyring> keyring, WorkerConnector& workers,
          FakeClock& clock, SandboxLimits limits) {
    auto opened = store::OpenStore(url);
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    store = std::move(*opened);
    secrets = std::make_unique<SecretService>(*store, keyring);
    resolver = std::make_unique<Resolver>(*store, *secrets);
    pool = std::make_unique<WorkerPool>(*store, workers, WorkerPoolOptions{std::chrono::seconds(20), clock.AsClock()});
    sandboxes = std::make_unique<SandboxService>(*store, *resolver, *pool, limits);
    secrets->SetListener([s = sandboxes.get()](const SecretChange& c, std::shared_ptr<RefreshTicket> t) {
      s->OnSecretChange(c, std::move(t));
    });
  }
  std::unique_ptr<store::Store> store;
  std::unique_ptr<SecretService> secrets;
  std::unique_ptr<Resolver> resolver;
  std::unique_ptr<WorkerPool> pool;
  std::unique_ptr<SandboxService> sandboxes;
};

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = osb::testing::FreshDatabaseUrl();
    auto ring = crypto::Keyring::FromHex(kKey);
    ASSERT_TRUE(ring.ok());
    keyring_ = std::make_shared<const crypto::Keyring>(std::move(*ring));
  }

  void Start(SandboxLimits limits = {}) {
    a_ = std::make_unique<Replica>(url_, keyring_, workers_, clock_, limits);
    b_ = std::make_unique<Replica>(url_, keyring_, workers_, clock_, limits);
    auto org = a_->store->EnsureOrg("acme");
    ASSERT_TRUE(org.ok());
    org_ = org->id;
    ProjectService projects(*a_->store);
    ProjectFields fields;
    fields.name = "proj";
    auto p = projects.Create(org_, fields);
    ASSERT_TRUE(p.ok()) << p.error().message;
    project_id_ = p->project.id;
  }

  SandboxRequest Request(int memory_mb = 256) {
    SandboxRequest r;
    r.project = "proj";
    r.memory_mb = memory_mb;
    return r;
  }

  std::string StatusOf(const std::string& id) {
    auto row = a_->store->GetSandbox(org_, id);
    return row ? row->status : "<" + row.error().message + ">";
  }

  std::string url_;
  std::shared_ptr<const crypto::Keyring> keyring_;
  FakeWorkers workers_;
  FakeClock clock_;
  std::unique_ptr<Replica> a_, b_;
  std::string org_, project_id_;
};

TEST_F(ReplicasTest, CreatesThroughEitherReplicaLandOnBothWorkers) {
  Start();
  // Each worker registers with (and heartbeats to) a different replica.
  ASSERT_TRUE(a_->pool->Register("w1", "w1:8082", 10).ok());
  ASSERT_TRUE(b_->pool->Register("w2", "w2:8082", 10).ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    for (Replica* r : {a_.get(), b_.get()}) {
      auto sb = r->sandboxes->Create(org_, Request());
      ASSERT_TRUE(sb.ok()) << sb.error().message;
      ids.push_back(sb->id);
      EXPECT_EQ(StatusOf(sb->id), "running");
    }
  }
  EXPECT_EQ(workers_.Get("w1")->Running().size(), 4u);
  EXPECT_EQ(workers_.Get("w2")->Running().size(), 4u);
  // Both replicas see every sandbox, and either can delete any of them.
  ASSERT_TRUE(b_->sandboxes->Delete(org_, ids[0]).ok());
  EXPECT_EQ(workers_.Get("w1")->Running().size() + workers_.Get("w2")->Running().size(), 7u);
}

TEST_F(ReplicasTest, HeartbeatToOneReplicaKeepsTheWorkerHealthyForAll) {
  Start();
  ASSERT_TRUE(a_->pool->Register("w1", "w1:8082", 10).ok());
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(std::chrono::seconds(15));  // each step alone is inside the window, the sum is not
    ASSERT_TRUE(a_->pool->Heartbeat("w1").ok());
  }
  auto sb = b_->sandboxes->Create(org_, Request());
  ASSERT_TRUE(sb.ok()) << sb.error().message;
  EXPECT_EQ(sb->worker_id, "w1");
  // An unknown worker must register (with any replica) first.
  EXPECT_EQ(b_->pool->Heartbeat("w9").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(b_->pool->Heartbeat("").error().code, ErrorCode::kNotFound);
}

TEST_F(ReplicasTest, ConcurrentCreatesNeverOverfillAWorker) {
  Start();
  ASSERT_TRUE(a_->pool->Register("w1", "w1:8082", 3).ok());
  ASSERT_TRUE(b_->pool->Register("w2", "w2:8082", 3).ok());
  std::atomic<int> created{0}, unavailable{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      Replica& r = i % 2 ? *a_ : *b_;
      auto sb = r.sandboxes->Create(org_, Request());
      if (sb) {
        ++created;
      } else {
        EXPECT_EQ(sb.error().code, ErrorCode::kUnavailable) << sb.error().message;
        ++unavailable;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 6);
  EXPECT_EQ(unavailable.load(), 10);
  EXPECT_EQ(workers_.Get("w1")->Running().size(), 3u);
  EXPECT_EQ(workers_.Get("w2")->Running().size(), 3u);
}

TEST_F(ReplicasTest, MemoryAndCpuAreCapacityToo) {
  Start();
  ASSERT_TRUE(a_->pool->Register("w1", "w1:8082", 100, WorkerResources{4, 1024}).ok());
  ASSERT_TRUE(a_->sandboxes->Create(org_, Request(512)).ok());
  ASSERT_TRUE(b_->sandboxes->Create(org_, Request(512)).ok());
  auto third = a_->sandboxes->Create(org_, Request(128));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::kUnavailable);
  // CPUs: a second worker with 2 CPUs takes two 1-CPU sandboxes, then no more.
  ASSERT_TRUE(b_->pool->Register("w2", "w2:8082", 100, WorkerResources{2, 0}).ok());
  ASSERT_TRUE(a_->sandboxes->Create(org_, Request(128)).ok());
  ASSERT_TRUE(b_->sandboxes->Create(org_, Request(128)).ok());
  EXPECT_EQ(a_->sandboxes->Create(org_, Request(128)).error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(workers_.Get("w2")->Running().size(), 2u);
}

TEST_F(ReplicasTest, OrgLimitsAnswerResourceExhausted) {
  SandboxLimits limits;
  limits.org_max_sandboxes = 3;
  limits.org_max_memory_mb = 1024;
  Start(limits);
  ASSERT_TRUE(a_->pool->Register("w1", "w1:8082", 100).ok());
  ASSERT_TRUE(a_->sandboxes->Create(org_, Request(512)).ok());
  auto big = b_->sandboxes->Create(org_, Request(1024));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(big.error().message.find("memory"), std::string::npos) << big.error().message;
  ASSERT_TRUE(b_->sandboxes->Create(org_, Request(256)).ok());
  ASSERT_TRUE(a_->sandboxes->Create(org_, Request(128)).ok());
  auto fourth = b_->sandboxes->Create(org_, Request(128));
  ASSERT_FALSE(fourth.ok());
  EXPECT_EQ(fourth.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(fourth.error().message.find("running sandboxes"), std::string::npos) << fourth.error().message;
  // Another org is not affected.
  auto other = a_->store->EnsureOrg("other");
  ASSERT_TRUE(other.ok());
  SandboxRequest plain;
  EXPECT_TRUE(a_->sandboxes->Create(other->id, plain).ok());
  EXPECT_EQ(workers_.Get("w1")->Running().size(), 4u);
}

TEST_F(ReplicasTest, StaleWorkersSandboxesBecomeLostOnceAndNewCreatesGoElsewhere) {
  Start();
  ASSERT_TRUE(a_->pool->Register("w1", "w1:8082", 10).ok());
  ASSERT_TRUE(b_->pool->Register("w2", "w2:8082", 10).ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    auto sb = (i % 2 ? a_ : b_)->sandboxes->Create(org_, Request());
    ASSERT_TRUE(sb.ok()) << sb.error().message;
    ids.push_back(sb->id);
  }
  std::set<std::string> on_w1;
  for (const auto& id : workers_.Get("w1")->Running()) on_w1.insert(id);
  ASSERT_EQ(on_w1.size(), 3u);

  // w1 goes silent (kill -9); w2 keeps heartbeating, to replica b.
  clock_.Advance(std::chrono::seconds(10));
  ASSERT_TRUE(b_->pool->Heartbeat("w2").ok());
  auto none = a_->sandboxes->SweepLost();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty()) << "inside the stale window nothing is lost";
  clock_.Advance(std::chrono::seconds(15));
  ASSERT_TRUE(b_->pool->Heartbeat("w2").ok());

  // Both replicas notice at the same moment; each sandbox is marked once.
  std::vector<std::future<Result<std::vector<std::string>>>> sweeps;
  for (int i = 0; i < 4; ++i) {
    Replica* r = i % 2 ? a_.get() : b_.get();
    sweeps.push_back(std::async(std::launch::async, [r] { return r->sandboxes->SweepLost(); }));
  }
  std::multiset<std::string> marked;
  for (auto& f : sweeps) {
    auto got = f.get();
    ASSERT_TRUE(got.ok()) << got.error().message;
    marked.insert(got->begin(), got->end());
  }
  EXPECT_EQ(marked, std::multiset<std::string>(on_w1.begin(), on_w1.end()));
  for (const auto& id : ids) EXPECT_EQ(StatusOf(id), on_w1.count(id) ? "lost" : "running") << id;
  EXPECT_TRUE(a_->sandboxes->SweepLost()->empty());

  // New creates, through either replica, go to w2 only.
  for (Replica* r : {a_.get(), b_.get(), a_.get()}) {
    auto sb = r->sandboxes->Create(org_, Request());
    ASSERT_TRUE(sb.ok()) << sb.error().message;
    EXPECT_EQ(sb->worker_id, "w2");
  }
  // w1 comes back (it was partitioned, not dead) still running them: they
  // have no owner any more and are destroyed; they stay listed as lost.
  ASSERT_TRUE(a_->pool->Heartbeat("w1").ok());
  a_->sandboxes->ReconcileWorker("w1", workers_.Get("w1")->Running());
  EXPECT_TRUE(workers_.Get("w1")->WaitForNoSandboxes());
  for (const auto& id : on_w1) EXPECT_EQ(StatusOf(id), "lost");
  // A lost sandbox is listed until deleted, and deleting it needs no worker.
  workers_.Get("w1")->SetMode(FakeWorker::Mode::kUnreachable);
  EXPECT_TRUE(a_->sandboxes->Delete(org_, *on_w1.begin()).ok());
  // Exec in a lost sandbox is a conflict, not a hang.
  EXPECT_EQ(b_->sandboxes->Exec(org_, *std::next(on_w1.begin()), {"true", {}, {}, "", 5}).error().code,
            ErrorCode::kConflict);
}

TEST_F(ReplicasTest, ReconcileStopsWhatTheWorkerNoLongerRuns) {
  Start();
  ASSERT_TRUE(a_->pool->Register("w1", "w1:8082", 10).ok());
  auto s1 = a_->sandboxes->Create(org_, Request());
  auto s2 = a_->sandboxes->Create(org_, Request());
  ASSERT_TRUE(s1.ok() && s2.ok());
  // The worker heartbeats to replica b, reporting only s2.
  ASSERT_TRUE(b_->pool->Heartbeat("w1").ok());
  b_->sandboxes->ReconcileWorker("w1", {s2->id});
  EXPECT_EQ(StatusOf(s1->id), "stopped");
  EXPECT_EQ(StatusOf(s2->id), "running");
  // Another worker's report never touches w1's sandboxes.
  ASSERT_TRUE(b_->pool->Register("w2", "w2:8082", 10).ok());
  b_->sandboxes->ReconcileWorker("w2", {});
  EXPECT_EQ(StatusOf(s2->id), "running");
}

TEST_F(ReplicasTest, SecretsForWorkerOnlyItsOwnAndNeverForAnEmptyId) {
  Start();
  ASSERT_TRUE(a_->pool->Register("w1", "w1:8082", 1).ok());
  ASSERT_TRUE(a_->pool->Register("w2", "w2:8082", 1).ok());
  ASSERT_TRUE(a_->secrets->Set(org_, SecretScope::kProject, "proj", "TOKEN", "v-1", {}).ok());
  auto s1 = a_->sandboxes->Create(org_, Request());
  auto s2 = b_->sandboxes->Create(org_, Request());
  ASSERT_TRUE(s1.ok() && s2.ok());
  auto mine = b_->sandboxes->SecretsForWorker(s1->worker_id, {s1->id, s2->id});
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ(mine->at(0).sandbox_id, s1->id);
  ASSERT_EQ(mine->at(0).secrets.size(), 1u);
  EXPECT_EQ(mine->at(0).secrets[0].value, "v-1");
  auto empty = b_->sandboxes->SecretsForWorker("", {s1->id, s2->id});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(ReplicasTest, SecretUpdateReachesEverySandboxOnEveryWorkerInParallel) {
  SandboxLimits limits;
  limits.refresh_deadline = std::chrono::milliseconds(1500);
  Start(limits);
  ASSERT_TRUE(a_->pool->Register("w1", "w1:8082", 10).ok());
  ASSERT_TRUE(b_->pool->Register("w2", "w2:8082", 10).ok());
  ASSERT_TRUE(b_->pool->Register("w3", "w3:8082", 10).ok());
  ASSERT_TRUE(a_->secrets->Set(org_, SecretScope::kProject, "proj", "TOKEN", "old", {}).ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 9; ++i) {
    auto sb = (i % 2 ? a_ : b_)->sandboxes->Create(org_, Request());
    ASSERT_TRUE(sb.ok()) << sb.error().message;
    ids.push_back(sb->id);
  }
  // Through replica b, although a created most of them.
  auto set = b_->secrets->Set(org_, SecretScope::kProject, "proj", "TOKEN", "new", {});
  ASSERT_TRUE(set.ok()) << set.error().message;
  // Set returns once the push has started; the ticket reports it.
  const RefreshReport first = set->refresh->Wait();
  EXPECT_EQ(first.refreshed, 9);
  EXPECT_TRUE(first.failed.empty());
  for (const auto& w : {"w1", "w2", "w3"}) {
    for (const auto& id : workers_.Get(w)->Running()) EXPECT_EQ(workers_.Get(w)->SecretIn(id, "TOKEN"), "new");
  }

  // One worker unreachable, one hanging until the deadline: the others are
  // refreshed anyway, within the one deadline, and the rest are reported.
  workers_.Get("w1")->SetMode(FakeWorker::Mode::kUnreachable);
  workers_.Get("w2")->SetMode(FakeWorker::Mode::kHang);
  const auto start = std::chrono::steady_clock::now();
  set = a_->secrets->Set(org_, SecretScope::kProject, "proj", "TOKEN", "newer", {});
  ASSERT_TRUE(set.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500))
      << "the caller only starts the push; no thread of its waits for the hanging worker";
  const RefreshReport second = set->refresh->Wait();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(second.refreshed, 3);
  std::vector<std::string> expected_failed = workers_.Get("w1")->Running();
  for (const auto& id : workers_.Get("w2")->Running()) expected_failed.push_back(id);
  std::sort(expected_failed.begin(), expected_failed.end());
  std::vector<std::string> failed = second.failed;
  std::sort(failed.begin(), failed.end());
  EXPECT_EQ(failed, expected_failed);
  EXPECT_LT(took, std::chrono::milliseconds(1500 + 1000)) << "bounded by the deadline, not per sandbox";
  for (const auto& id : workers_.Get("w3")->Running()) EXPECT_EQ(workers_.Get("w3")->SecretIn(id, "TOKEN"), "newer");
  workers_.Get("w2")->ReleaseExecs();
}

TEST_F(ReplicasTest, ExecRunsOffTheCallerWithAPerOrgCap) {
  SandboxLimits limits;
  limits.long_calls.per_org = 3;
  Start(limits);
  ASSERT_TRUE(a_->pool->Register("w1", "w1:8082", 10).ok());
  auto sb = a_->sandboxes->Create(org_, Request());
  ASSERT_TRUE(sb.ok());
  std::mutex mu;
  std::vector<Result<ExecOutcome>> results;
  std::condition_variable cv;
  auto done = [&](Result<ExecOutcome> r) {
    std::lock_guard lock(mu);
    results.push_back(std::move(r));
    cv.notify_all();
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a_->sandboxes->ExecAsync(org_, sb->id, {"sleep", {}, {}, "", 60}, done).ok());
  ASSERT_TRUE(workers_.Get("w1")->WaitForExecs(3));  // all three run at once, none on this thread
  Status over = a_->sandboxes->ExecAsync(org_, sb->id, {"sleep", {}, {}, "", 60}, done);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kResourceExhausted);
  // Another org has its own allowance.
  auto other = a_->store->EnsureOrg("other");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(a_->sandboxes->ExecAsync(other->id, sb->id, {"true", {}, {}, "", 5}, done).ok());
  workers_.Get("w1")->ReleaseExecs();
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return results.size() == 4; });
  int ok = 0, not_found = 0;
  for (const auto& r : results) {
    if (r.ok()) ++ok;
    else if (r.error().code == ErrorCode::kNotFound) ++not_found;  // other org cannot see the sandbox
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(not_found, 1);
}

}  // namespace
}  // namespace osb::controlplane
