// Store behaviour on the backend selected by OSB_TEST_DB (run for both).
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "store/store.h"
#include "store_fixture.h"
#include "test_db.h"

namespace osb::store {
namespace {

class StoreTest : public osb::testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    if (HasFatalFailure()) return;
    auto org = store_->EnsureOrg("default");
    ASSERT_TRUE(org.ok()) << org.error().message;
    org_ = *org;
  }

  Project NewProject(const std::string& name, const std::string& org_id) {
    Project p;
    p.id = NewId("prj");
    p.org_id = org_id;
    p.name = name;
    p.template_id = "base";
    p.egress_allowlist = {"api.example.com", "*.github.com"};
    p.created_at = p.updated_at = NowRfc3339();
    return p;
  }

  SecretRow Secret(const std::string& group_id, const std::string& name, const std::string& ct) {
    SecretRow s;
    s.org_id = org_.id;
    s.group_id = group_id;
    s.name = name;
    s.ciphertext = ct;
    s.key_id = "k1";
    s.allowed_hosts = {"api.example.com"};
    s.created_at = s.updated_at = NowRfc3339();
    return s;
  }

  Org org_;
};

TEST_F(StoreTest, MigrationsAreIdempotentAndVersioned) {
  // The newest migration is the schema version (8: secret kinds, issue 16;
  // versions may have gaps: the runner applies them in order).
  const int version = *store_->SchemaVersion();
  EXPECT_GE(version, 8);
  auto again = MigrateStore(url_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, version);
  auto rows = testing::RawQuery(url_, "SELECT version FROM schema_migrations ORDER BY version");
  ASSERT_GE(rows.size(), 4u);
  EXPECT_EQ(rows.back().at(0), std::to_string(version));
  // Later tables exist for scheduling.
  EXPECT_TRUE(testing::RawQuery(url_, "SELECT id FROM sandboxes").empty());
  EXPECT_TRUE(testing::RawQuery(url_, "SELECT id FROM workers").empty());
}

TEST_F(StoreTest, EnsureOrgIsStableAndKeysMapToOrgs) {
  auto again = store_->EnsureOrg("default");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, org_.id);
  ASSERT_TRUE(store_->AddApiKey(org_.id, "hash1", "admin").ok());
  ASSERT_TRUE(store_->AddApiKey(org_.id, "hash1", "admin").ok());  // idempotent
  EXPECT_EQ(*store_->OrgIdForKeyHash("hash1"), org_.id);
  EXPECT_EQ(store_->OrgIdForKeyHash("nope").error().code, ErrorCode::kNotFound);
  auto other = store_->EnsureOrg("other");
  EXPECT_EQ(store_->AddApiKey(other->id, "hash1", "x").error().code, ErrorCode::kAlreadyExists);
}

TEST_F(StoreTest, KeysCarryTheirScopeAndExpiry) {
  ASSERT_TRUE(store_->AddApiKey(org_.id, "h-admin", "a").ok());  // no scope given: admin
  ASSERT_TRUE(store_->AddApiKey(org_.id, "h-sbx", "s", kScopeSandbox, "2030-01-01T00:00:00.000Z").ok());
  auto admin = store_->GetApiKey("h-admin");
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->scope, kScopeAdmin);
  EXPECT_FALSE(admin->expires_at);
  auto sbx = store_->GetApiKey("h-sbx");
  ASSERT_TRUE(sbx.ok());
  EXPECT_EQ(sbx->org_id, org_.id);
  EXPECT_EQ(sbx->scope, kScopeSandbox);
  EXPECT_EQ(sbx->expires_at, "2030-01-01T00:00:00.000Z");
  EXPECT_EQ(store_->GetApiKey("nope").error().code, ErrorCode::kNotFound);
  auto list = store_->ListApiKeys(org_.id);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  // Migration 4: a key row written without a scope (as every key before
  // v4 was) is an admin key that never expires.
  testing::RawQuery(url_, "INSERT INTO api_keys (key_hash, org_id, label, created_at) VALUES ('h-old', '" +
                              org_.id + "', 'old', '2020-01-01T00:00:00.000Z')");
  auto old = store_->GetApiKey("h-old");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->scope, kScopeAdmin);
  EXPECT_FALSE(old->expires_at);
}

TEST_F(StoreTest, TheLastUnexpiredAdminKeyIsKept) {
  ASSERT_TRUE(store_->AddApiKey(org_.id, "admin", "a").ok());
  ASSERT_TRUE(store_->AddApiKey(org_.id, "sbx", "s", kScopeSandbox).ok());
  ASSERT_TRUE(store_->AddApiKey(org_.id, "old-admin", "o", kScopeAdmin, "2001-01-01T00:00:00.000Z").ok());
  ASSERT_TRUE(store_->AddApiKey(org_.id, "later-admin", "l", kScopeAdmin, "2030-01-01T00:00:00.000Z").ok());
  const std::string now = "2020-01-01T00:00:00.000Z";
  EXPECT_TRUE(store_->DeleteApiKey(org_.id, "admin", now).ok());  // later-admin still works at `now`
  EXPECT_EQ(store_->DeleteApiKey(org_.id, "later-admin", now).error().code, ErrorCode::kConflict);
  EXPECT_TRUE(store_->DeleteApiKey(org_.id, "old-admin", now).ok());
  EXPECT_TRUE(store_->DeleteApiKey(org_.id, "sbx", now).ok());
  EXPECT_EQ(store_->DeleteApiKey(org_.id, "later-admin", now).error().code, ErrorCode::kConflict);
}

TEST_F(StoreTest, ProjectCrudUniqueNamesAndIsolation) {
  auto created = store_->CreateProject(NewProject("web", org_.id));
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_FALSE(created->own_group_id.empty());
  EXPECT_EQ(store_->CreateProject(NewProject("web", org_.id)).error().code, ErrorCode::kAlreadyExists);

  auto by_name = store_->GetProject(org_.id, "web");
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->id, created->id);
  EXPECT_EQ(by_name->egress_allowlist, (std::vector<std::string>{"api.example.com", "*.github.com"}));
  EXPECT_EQ(store_->GetProject(org_.id, created->id)->name, "web");

  auto other = store_->EnsureOrg("other");
  EXPECT_EQ(store_->GetProject(other->id, created->id).error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store_->CreateProject(NewProject("web", other->id)).ok());  // per-org names
  EXPECT_EQ(store_->ListProjects(org_.id)->size(), 1u);

  auto updated = store_->UpdateProject(org_.id, created->id, [](Project& p) {
    p.cpu_count = 4;
    p.egress_allowlist.clear();
    return Status();
  });
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->cpu_count, 4);
  EXPECT_TRUE(updated->egress_allowlist.empty());
  EXPECT_EQ(updated->created_at, created->created_at);

  EXPECT_EQ(store_->DeleteProject(other->id, created->id).error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(store_->PutSecret(Secret(created->own_group_id, "TOKEN", "ct")).ok());
  ASSERT_TRUE(store_->DeleteProject(org_.id, created->id).ok());
  EXPECT_EQ(store_->GetProject(org_.id, "web").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(testing::RawQuery(url_, "SELECT COUNT(*) FROM org_secrets")[0][0], "0");
}

// Migration 6: a project's default diskMB is stored, updated and listed.
TEST_F(StoreTest, ProjectDiskMbIsStored) {
  Project fresh = NewProject("plain", org_.id);
  auto plain = store_->CreateProject(fresh);
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(store_->GetProject(org_.id, "plain")->disk_mb, 1024);

  Project big = NewProject("big", org_.id);
  big.disk_mb = 4096;
  auto created = store_->CreateProject(big);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(store_->GetProject(org_.id, "big")->disk_mb, 4096);
  EXPECT_EQ(testing::RawQuery(url_, "SELECT disk_mb FROM projects WHERE name = 'big'")[0][0], "4096");

  auto updated = store_->UpdateProject(org_.id, created->id, [](Project& p) {
    p.disk_mb = 256;
    return Status();
  });
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(updated->disk_mb, 256);
  auto listed = store_->ListProjects(org_.id);
  ASSERT_TRUE(listed.ok());
  for (const auto& p : *listed) EXPECT_EQ(p.disk_mb, p.name == "big" ? 256 : 1024);

  // A row written without the column (as before migration 6) gets the default.
  ASSERT_TRUE(store_->DeleteProject(org_.id, created->id).ok());
  testing::RawQuery(url_,
                    "INSERT INTO projects (id, org_id, name, template_id, cpu_count, memory_mb, timeout_sec, "
                    "egress_allowlist, created_at, updated_at) VALUES ('prj_old', '" + org_.id +
                        "', 'old', 'base', 1, 512, 300, '[]', 'x', 'x')");
  EXPECT_EQ(testing::RawQuery(url_, "SELECT disk_mb FROM projects WHERE id = 'prj_old'")[0][0], "1024");
}

TEST_F(StoreTest, GroupsAttachInOrderAndCannotBeDeletedWhileAttached) {
  SecretGroup g{NewId("grp"), org_.id, "shared", std::nullopt, NowRfc3339(), NowRfc3339()};
  ASSERT_TRUE(store_->CreateGroup(g).ok());
  SecretGroup g2 = g;
  g2.id = NewId("grp");
  EXPECT_EQ(store_->CreateGroup(g2).error().code, ErrorCode::kAlreadyExists);
  g2.name = "second";
  ASSERT_TRUE(store_->CreateGroup(g2).ok());

  Project p = NewProject("api", org_.id);
  p.secret_group_ids = {g2.id, g.id};
  auto created = store_->CreateProject(p);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(store_->GetProject(org_.id, "api")->secret_group_ids, (std::vector<std::string>{g2.id, g.id}));
  EXPECT_EQ(store_->ListGroups(org_.id)->size(), 2u);  // the project's own group is not listed

  auto del = store_->DeleteGroup(org_.id, g.id);
  EXPECT_EQ(del.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(del.error().message.find("api"), std::string::npos);

  // Another org's group cannot be attached.
  auto other = store_->EnsureOrg("other");
  Project foreign = NewProject("x", other->id);
  foreign.secret_group_ids = {g.id};
  EXPECT_EQ(store_->CreateProject(foreign).error().code, ErrorCode::kNotFound);

  ASSERT_TRUE(store_->UpdateProject(org_.id, created->id, [&](Project& p) {
                       p.secret_group_ids = {g2.id};
                       return Status();
                     }).ok());
  EXPECT_TRUE(store_->DeleteGroup(org_.id, g.id).ok());
  EXPECT_EQ(store_->GetGroup(org_.id, "shared").error().code, ErrorCode::kNotFound);
}

TEST_F(StoreTest, SecretUpsertKeepsCreatedAtAndReplaceIsCompareAndSwap) {
  auto p = store_->CreateProject(NewProject("p", org_.id));
  ASSERT_TRUE(p.ok());
  auto first = store_->PutSecret(Secret(p->own_group_id, "TOKEN", std::string("\x00\x01\xff", 3)));
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto listed = store_->ListSecrets(p->own_group_id, true);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->at(0).ciphertext, std::string("\x00\x01\xff", 3));
  EXPECT_EQ(listed->at(0).org_id, org_.id);

  auto second = Secret(p->own_group_id, "TOKEN", "new");
  second.updated_at = "2999-01-01T00:00:00.000Z";
  auto replaced = store_->PutSecret(second);
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->created_at, first->created_at);
  EXPECT_EQ(replaced->updated_at, "2999-01-01T00:00:00.000Z");

  EXPECT_FALSE(*store_->ReplaceCiphertext(p->own_group_id, "TOKEN", "stale", "x", "k2"));
  EXPECT_TRUE(*store_->ReplaceCiphertext(p->own_group_id, "TOKEN", "new", "newer", "k2"));
  auto all = store_->ListAllSecrets();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->at(0).ciphertext, "newer");
  EXPECT_EQ(all->at(0).key_id, "k2");

  // Secret kinds (migration 8): the new columns round-trip; defaults for
  // rows written without them.
  EXPECT_EQ(all->at(0).kind, "value");
  EXPECT_EQ(all->at(0).allowed_requests, "[]");
  EXPECT_EQ(all->at(0).on_disallowed_request, "seal");
  auto signing = Secret(p->own_group_id, "SIG", "material-ciphertext");
  signing.kind = "hmac";
  signing.public_material = R"({"header":"X-Signature"})";
  signing.allowed_requests = R"([{"host":"api.test","methods":["POST"],"pathPrefix":"/v1"}])";
  signing.on_disallowed_request = "refuse";
  auto put = store_->PutSecret(signing);
  ASSERT_TRUE(put.ok()) << put.error().message;
  EXPECT_EQ(put->kind, "hmac");
  auto sig = store_->ListSecrets(p->own_group_id, false);
  ASSERT_EQ(sig->size(), 2u);
  EXPECT_EQ(sig->at(0).name, "SIG");
  EXPECT_EQ(sig->at(0).kind, "hmac");
  EXPECT_EQ(sig->at(0).public_material, R"({"header":"X-Signature"})");
  EXPECT_EQ(sig->at(0).allowed_requests, signing.allowed_requests);
  EXPECT_EQ(sig->at(0).on_disallowed_request, "refuse");
  EXPECT_TRUE(sig->at(0).ciphertext.empty());
  EXPECT_TRUE(store_->DeleteSecret(p->own_group_id, "SIG").ok());

  EXPECT_EQ(store_->DeleteSecret(p->own_group_id, "NOPE").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store_->DeleteSecret(p->own_group_id, "TOKEN").ok());
  EXPECT_EQ(store_->PutSecret(Secret("grp_missing", "A", "x")).error().code, ErrorCode::kNotFound);
}

TEST_F(StoreTest, ConcurrentWritersLeaveOneOfTheirValues) {
  auto p = store_->CreateProject(NewProject("p", org_.id));
  ASSERT_TRUE(p.ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 5; ++round) {
        if (!store_->PutSecret(Secret(p->own_group_id, "SHARED", "value-" + std::to_string(i))).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto listed = store_->ListSecrets(p->own_group_id, true);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE(listed->at(0).ciphertext.starts_with("value-"));
}

TEST_F(StoreTest, ConcurrentPartialUpdatesNeverLoseAField) {
  auto p = store_->CreateProject(NewProject("p", org_.id));
  ASSERT_TRUE(p.ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  // Each writer owns one field and increments it; a lost update would leave
  // some field short of its final count.
  for (int field = 0; field < 4; ++field) {
    threads.emplace_back([&, field] {
      for (int round = 0; round < 10; ++round) {
        auto r = store_->UpdateProject(org_.id, p->id, [field](Project& row) {
          if (field == 0) ++row.cpu_count;
          if (field == 1) ++row.memory_mb;
          if (field == 2) ++row.timeout_sec;
          if (field == 3) row.egress_allowlist.push_back("h" + std::to_string(row.egress_allowlist.size()));
          return Status();
        });
        if (!r.ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto final = store_->GetProject(org_.id, p->id);
  EXPECT_EQ(final->cpu_count, 1 + 10);
  EXPECT_EQ(final->memory_mb, 512 + 10);
  EXPECT_EQ(final->timeout_sec, 300 + 10);
  EXPECT_EQ(final->egress_allowlist.size(), 2u + 10u);
}

TEST_F(StoreTest, WorkersAndSandboxes) {
  ASSERT_TRUE(store_->UpsertWorker({"w1", "127.0.0.1:7000", 4, NowRfc3339()}).ok());
  ASSERT_TRUE(store_->UpsertWorker({"w1", "127.0.0.1:7001", 8, NowRfc3339()}).ok());
  auto workers = store_->ListWorkers();
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_EQ(workers->at(0).address, "127.0.0.1:7001");
  EXPECT_EQ(workers->at(0).capacity, 8);
  EXPECT_TRUE(store_->TouchWorker("w1", NowRfc3339()).ok());
  EXPECT_EQ(store_->TouchWorker("w-missing", NowRfc3339()).error().code, ErrorCode::kNotFound);

  auto p = store_->CreateProject(NewProject("p", org_.id));
  SandboxRow sb{NewId("sbx"), org_.id, p->id, "w1", "running", "{\"cpuCount\":1}", NowRfc3339(), std::nullopt};
  ASSERT_TRUE(store_->InsertSandbox(sb).ok());
  auto got = store_->GetSandbox(org_.id, sb.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->project_id, p->id);
  EXPECT_EQ(got->config, "{\"cpuCount\":1}");
  EXPECT_FALSE(got->ended_at.has_value());
  auto other = store_->EnsureOrg("other");
  EXPECT_EQ(store_->GetSandbox(other->id, sb.id).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListRunningSandboxes(std::string("w1"), std::nullopt)->size(), 1u);
  EXPECT_EQ(store_->ListRunningSandboxes(std::nullopt, p->id)->size(), 1u);
  EXPECT_EQ(store_->ListRunningSandboxes(std::string("w2"), std::nullopt)->size(), 0u);
  ASSERT_TRUE(store_->StopSandbox(sb.id, NowRfc3339()).ok());
  EXPECT_EQ(store_->GetSandbox(org_.id, sb.id)->status, "stopped");
  EXPECT_TRUE(store_->GetSandbox(org_.id, sb.id)->ended_at.has_value());
  EXPECT_EQ(store_->ListRunningSandboxes(std::nullopt, std::nullopt)->size(), 0u);
  EXPECT_EQ(store_->StopSandbox("sbx_missing", NowRfc3339()).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListSandboxes(org_.id)->size(), 1u);
  // Deleting the project keeps the sandbox record (project_id becomes NULL).
  ASSERT_TRUE(store_->DeleteProject(org_.id, p->id).ok());
  EXPECT_FALSE(store_->GetSandbox(org_.id, sb.id)->project_id.has_value());
  ASSERT_TRUE(store_->DeleteSandbox(sb.id).ok());
  EXPECT_EQ(store_->GetSandbox(org_.id, sb.id).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->DeleteSandbox(sb.id).error().code, ErrorCode::kNotFound);
}

TEST(StoreUrl, RejectsUnknownSchemesAndRelativePaths) {
  EXPECT_EQ(OpenStore("mysql://x").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(OpenStore("sqlite://relative.db").error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace osb::store

namespace osb::store {
namespace {

// Two connections (= two replicas) reserving on one worker at once: the
// capacity check shares the insert's transaction, so it is never overfilled.
TEST_F(StoreTest, ConcurrentReservationsNeverOverfillAWorker) {
  const std::string now = NowRfc3339();
  ASSERT_TRUE(store_->UpsertWorker({"w1", "w1:1", 5, now, 0, 0, now}).ok());
  auto other = OpenStore(url_);
  ASSERT_TRUE(other.ok());
  std::atomic<int> ok{0}, full{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      Store& s = i % 2 ? *store_ : **other;
      SandboxRow row{"sb-" + std::to_string(i), org_.id, std::nullopt, "w1", "creating", "{}", now,
                     std::nullopt, 1, 128};
      Status st = s.ReserveSandbox(row, {"", 0, 0});
      if (st) {
        ++ok;
      } else {
        EXPECT_EQ(st.error().code, ErrorCode::kUnavailable) << st.error().message;
        ++full;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 5);
  EXPECT_EQ(full.load(), 15);
  auto workers = store_->ListWorkers();
  ASSERT_TRUE(workers.ok());
  EXPECT_EQ(workers->at(0).sandboxes, 5);
  EXPECT_EQ(workers->at(0).memory_used_mb, 640);
  // A stale worker takes nothing, whatever its room.
  ASSERT_TRUE(store_->UpsertWorker({"w2", "w2:1", 5, "2000-01-01T00:00:00.000Z", 0, 0, ""}).ok());
  SandboxRow late{"sb-late", org_.id, std::nullopt, "w2", "creating", "{}", now, std::nullopt, 1, 128};
  EXPECT_EQ(store_->ReserveSandbox(late, {now, 0, 0}).error().code, ErrorCode::kUnavailable);
}

// A worker's CPUs and memory bound it as well as its sandbox count: a
// sandbox that does not fit what is left goes elsewhere.
TEST_F(StoreTest, ReservationsRespectAWorkersCpusAndMemory) {
  const std::string now = NowRfc3339();
  ASSERT_TRUE(store_->UpsertWorker({"cpu", "c:1", 50, now, 4, 0, now}).ok());
  ASSERT_TRUE(store_->UpsertWorker({"mem", "m:1", 50, now, 0, 1024, now}).ok());
  auto reserve = [&](const std::string& id, const std::string& worker, int cpus, int mb) {
    return store_->ReserveSandbox({id, org_.id, std::nullopt, worker, "creating", "{}", now, std::nullopt, cpus, mb},
                                  {"", 0, 0});
  };
  EXPECT_TRUE(reserve("c1", "cpu", 2, 99999));
  EXPECT_TRUE(reserve("c2", "cpu", 1, 99999));
  EXPECT_EQ(reserve("c3", "cpu", 2, 128).error().code, ErrorCode::kUnavailable);  // 3 + 2 > 4
  EXPECT_TRUE(reserve("c4", "cpu", 1, 128));
  EXPECT_TRUE(reserve("m1", "mem", 64, 768));
  EXPECT_EQ(reserve("m2", "mem", 1, 512).error().code, ErrorCode::kUnavailable);  // 768 + 512 > 1024
  EXPECT_TRUE(reserve("m3", "mem", 1, 256));
  // A stopped sandbox gives its share back.
  ASSERT_TRUE(store_->ActivateSandbox("c1", "{}").ok());
  ASSERT_TRUE(store_->StopSandbox("c1", now).ok());
  EXPECT_TRUE(reserve("c5", "cpu", 2, 128));
}

TEST_F(StoreTest, LostSandboxesAreMarkedOnceAcrossConnections) {
  const std::string old = "2000-01-01T00:00:00.000Z";
  const std::string now = NowRfc3339();
  ASSERT_TRUE(store_->UpsertWorker({"dead", "d:1", 50, old, 0, 0, old}).ok());
  ASSERT_TRUE(store_->UpsertWorker({"alive", "a:1", 50, now, 0, 0, now}).ok());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(store_->InsertSandbox({"d" + std::to_string(i), org_.id, std::nullopt, "dead", "running", "{}", now,
                                       std::nullopt, 1, 1}).ok());
    ASSERT_TRUE(store_->InsertSandbox({"a" + std::to_string(i), org_.id, std::nullopt, "alive", "running", "{}", now,
                                       std::nullopt, 1, 1}).ok());
  }
  auto other = OpenStore(url_);
  ASSERT_TRUE(other.ok());
  const std::string stale_before = "2001-01-01T00:00:00.000Z";
  std::vector<std::thread> threads;
  std::mutex mu;
  std::multiset<std::string> marked;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      Store& s = i % 2 ? *store_ : **other;
      auto lost = s.MarkLostSandboxes(stale_before, "2000-01-01T00:00:00.000Z", now);
      ASSERT_TRUE(lost.ok()) << lost.error().message;
      std::lock_guard lock(mu);
      for (const auto& r : *lost) marked.insert(r.id);
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(marked.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(marked.count("d" + std::to_string(i)), 1u);
    EXPECT_EQ(store_->GetSandbox(org_.id, "d" + std::to_string(i))->status, "lost");
    EXPECT_EQ(store_->GetSandbox(org_.id, "a" + std::to_string(i))->status, "running");
  }
}

TEST_F(StoreTest, CheckpointsAreOrgScopedListedByKindAndSandboxAndOutliveTheirSandbox) {
  const std::string now = NowRfc3339();
  ASSERT_TRUE(store_->UpsertWorker({"w1", "w:1", 50, now, 0, 0, now}).ok());
  ASSERT_TRUE(store_->InsertSandbox({"sb1", org_.id, std::nullopt, "w1", "running", "{}", now, std::nullopt, 1, 1}).ok());
  CheckpointRow c{"ck-1", org_.id, "sb1", std::nullopt, "w1", "user", "{\"cpuCount\":1}", int64_t{5} << 32, now};
  ASSERT_TRUE(store_->InsertCheckpoint(c).ok());
  ASSERT_TRUE(store_->InsertCheckpoint({"ck-h", org_.id, "sb1", std::nullopt, "w1", "hibernate", "{}", 1, now}).ok());
  auto got = store_->GetCheckpoint(org_.id, "ck-1");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->size_bytes, int64_t{5} << 32);  // beyond 32 bits
  EXPECT_EQ(got->config, c.config);
  EXPECT_EQ(got->worker_id, "w1");
  auto other = store_->EnsureOrg("other-ck");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(store_->GetCheckpoint(other->id, "ck-1").error().code, ErrorCode::kNotFound);
  auto all = store_->ListCheckpoints(org_.id, std::nullopt);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);  // the hibernation checkpoint is not listed
  EXPECT_TRUE(store_->ListCheckpoints(org_.id, std::string("nope"))->empty());
  EXPECT_EQ(store_->ListCheckpoints(org_.id, std::string("sb1"))->size(), 1u);
  ASSERT_TRUE(store_->DeleteSandbox("sb1").ok());
  EXPECT_TRUE(store_->GetCheckpoint(org_.id, "ck-1").ok());  // forks outlive their parent
  ASSERT_TRUE(store_->DeleteCheckpoint("ck-1").ok());
  EXPECT_EQ(store_->DeleteCheckpoint("ck-1").error().code, ErrorCode::kNotFound);
}

TEST_F(StoreTest, TransitionsAreConditionalOnTheCurrentStatus) {
  const std::string now = NowRfc3339();
  ASSERT_TRUE(store_->UpsertWorker({"w2", "w:2", 50, now, 0, 0, now}).ok());
  ASSERT_TRUE(store_->InsertSandbox({"sb2", org_.id, std::nullopt, "w2", "running", "{}", now, std::nullopt, 1, 1}).ok());
  ASSERT_TRUE(store_->TransitionSandbox("sb2", "running", "hibernated", "{\"a\":1}").ok());
  EXPECT_EQ(store_->TransitionSandbox("sb2", "running", "hibernated", "{}").error().code, ErrorCode::kNotFound);
  auto row = store_->GetSandbox(org_.id, "sb2");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->status, "hibernated");
  EXPECT_EQ(row->config, "{\"a\":1}");
  // A hibernated sandbox holds nothing on its worker.
  EXPECT_TRUE(store_->ListRunningSandboxes(std::string("w2"), std::nullopt)->empty());
  ASSERT_TRUE(store_->TransitionSandbox("sb2", "hibernated", "creating", "{}").ok());
  ASSERT_TRUE(store_->ActivateSandbox("sb2", "{}").ok());
}


}  // namespace
}  // namespace osb::store
