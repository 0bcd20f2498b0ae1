// Image templates in the store (migration 9), on the backend selected by
// OSB_TEST_DB (registered for both SQLite and PostgreSQL).
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>

#include "store/store.h"
#include "store_fixture.h"
#include "test_db.h"

namespace osb::store {
namespace {

class StoreTemplatesTest : public osb::testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    if (HasFatalFailure()) return;
    org_a_ = store_->EnsureOrg("a")->id;
    org_b_ = store_->EnsureOrg("b")->id;
  }
  TemplateRow Row(const std::string& org, const std::string& name, const std::string& digest) {
    return {NewId("tpl"), org, name, digest, int64_t{5} << 32, NowRfc3339()};
  }
  // A sandbox of `org` created from its template `name` (SandboxService
  // sets template_name when the org has a template of its templateID).
  SandboxRow Sandbox(const std::string& id, const std::string& org, const std::string& name) {
    SandboxRow row{id, org, std::nullopt, "w1", "creating", "{\"templateID\":\"" + name + "\"}", NowRfc3339(),
                   std::nullopt, 1, 64};
    row.template_name = name;
    return row;
  }
  void AddWorker() {
    const std::string now = NowRfc3339();
    ASSERT_TRUE(store_->UpsertWorker({"w1", "w1:1", 1000, now, 0, 0, now}).ok());
  }
  std::string org_a_, org_b_;
};

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');

TEST_F(StoreTemplatesTest, SchemaHasMigrationNine) { EXPECT_GE(*store_->SchemaVersion(), 9); }
TEST_F(StoreTemplatesTest, SchemaHasMigrationThirteen) { EXPECT_GE(*store_->SchemaVersion(), 13); }

TEST_F(StoreTemplatesTest, InsertGetListDeleteAreOrgScoped) {
  const auto busybox = Row(org_a_, "busybox", kD1);
  ASSERT_TRUE(store_->InsertTemplate(busybox).ok());
  ASSERT_TRUE(store_->InsertTemplate(Row(org_a_, "alpine", kD2)).ok());
  auto got = store_->GetTemplate(org_a_, "busybox");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(*got, busybox);  // size beyond 32 bits survives
  auto list = store_->ListTemplates(org_a_);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "alpine");  // by name
  EXPECT_EQ((*list)[1].name, "busybox");

  // Org B sees nothing of org A's and cannot delete it.
  EXPECT_EQ(store_->GetTemplate(org_b_, "busybox").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store_->ListTemplates(org_b_)->empty());
  EXPECT_EQ(store_->DeleteTemplate(org_b_, "busybox").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store_->GetTemplate(org_a_, "busybox").ok());

  ASSERT_TRUE(store_->DeleteTemplate(org_a_, "busybox").ok());
  EXPECT_EQ(store_->GetTemplate(org_a_, "busybox").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->DeleteTemplate(org_a_, "busybox").error().code, ErrorCode::kNotFound);
}

TEST_F(StoreTemplatesTest, NamesAreUniquePerOrgAndDigestsAreCountedAcrossOrgs) {
  ASSERT_TRUE(store_->InsertTemplate(Row(org_a_, "busybox", kD1)).ok());
  auto dup = store_->InsertTemplate(Row(org_a_, "busybox", kD2));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);
  EXPECT_NE(dup.error().message.find("busybox"), std::string::npos);
  // The same name and image in another org is fine: one stored copy, two names.
  ASSERT_TRUE(store_->InsertTemplate(Row(org_b_, "busybox", kD1)).ok());
  EXPECT_EQ(*store_->CountTemplatesWithDigest(kD1), 2);
  EXPECT_EQ(*store_->CountTemplatesWithDigest(kD2), 0);
  ASSERT_TRUE(store_->DeleteTemplate(org_a_, "busybox").ok());
  EXPECT_EQ(*store_->CountTemplatesWithDigest(kD1), 1);
}

// Delete vs create (migration 13): the delete's check that no sandbox holds
// the template shares the delete's transaction.
TEST_F(StoreTemplatesTest, DeleteIsRefusedWhileASandboxOfTheOrgHoldsIt) {
  AddWorker();
  ASSERT_TRUE(store_->InsertTemplate(Row(org_a_, "busybox", kD1)).ok());
  ASSERT_TRUE(store_->InsertTemplate(Row(org_b_, "busybox", kD1)).ok());
  ASSERT_TRUE(store_->ReserveSandbox(Sandbox("sb-a", org_a_, "busybox"), {"", 0, 0, kD1}).ok());
  EXPECT_EQ(store_->GetSandbox(org_a_, "sb-a")->template_name, "busybox");
  for (const std::string status : {"creating", "running", "hibernated", "waking"}) {
    if (status != "creating") {
      auto sb = store_->GetSandbox(org_a_, "sb-a");
      ASSERT_TRUE(store_->TransitionSandbox("sb-a", sb->status, status, sb->config).ok());
    }
    auto refused = store_->DeleteTemplate(org_a_, "busybox");
    ASSERT_FALSE(refused.ok()) << status;
    EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
    EXPECT_NE(refused.error().message.find("sb-a"), std::string::npos) << refused.error().message;
    EXPECT_TRUE(store_->GetTemplate(org_a_, "busybox").ok());
  }
  // Org A's sandbox does not hold org B's template of the same name.
  auto b = store_->DeleteTemplate(org_b_, "busybox");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->org_id, org_b_);
  EXPECT_EQ(b->digest, kD1);
  // A stopped sandbox holds nothing.
  ASSERT_TRUE(store_->TransitionSandbox("sb-a", "waking", "running", "{}").ok());
  ASSERT_TRUE(store_->StopSandbox("sb-a", NowRfc3339()).ok());
  EXPECT_TRUE(store_->DeleteTemplate(org_a_, "busybox").ok());
}

TEST_F(StoreTemplatesTest, ReservationFailsWhenTheTemplateIsGoneOrReplaced) {
  AddWorker();
  ASSERT_TRUE(store_->InsertTemplate(Row(org_a_, "busybox", kD1)).ok());
  ASSERT_TRUE(store_->DeleteTemplate(org_a_, "busybox").ok());
  auto gone = store_->ReserveSandbox(Sandbox("sb-1", org_a_, "busybox"), {"", 0, 0, kD1});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::kConflict);
  EXPECT_NE(gone.error().message.find("templateID"), std::string::npos) << gone.error().message;
  EXPECT_NE(gone.error().message.find("deleted"), std::string::npos) << gone.error().message;
  EXPECT_EQ(store_->GetSandbox(org_a_, "sb-1").error().code, ErrorCode::kNotFound);  // nothing reserved
  // Deleted and imported again as another image: the digest the create
  // resolved is not what the name means now.
  ASSERT_TRUE(store_->InsertTemplate(Row(org_a_, "busybox", kD2)).ok());
  auto replaced = store_->ReserveSandbox(Sandbox("sb-2", org_a_, "busybox"), {"", 0, 0, kD1});
  ASSERT_FALSE(replaced.ok());
  EXPECT_EQ(replaced.error().code, ErrorCode::kConflict);
  EXPECT_EQ(store_->GetSandbox(org_a_, "sb-2").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store_->ReserveSandbox(Sandbox("sb-3", org_a_, "busybox"), {"", 0, 0, kD2}).ok());
  // A sandbox naming no org template is not checked (base, worker images).
  SandboxRow plain = Sandbox("sb-4", org_a_, "alpine");
  plain.template_name.clear();
  EXPECT_TRUE(store_->ReserveSandbox(plain, {"", 0, 0}).ok());
}

// The interleaving of issue 14's "delete race": a delete and a create of
// the same template start at the same moment on two connections (two
// replicas). Exactly one wins; never a sandbox pointing at a deleted template.
TEST_F(StoreTemplatesTest, ConcurrentDeleteAndCreateNeverLeaveASandboxOnADeletedTemplate) {
  AddWorker();
  auto other = OpenStore(url_);
  ASSERT_TRUE(other.ok()) << other.error().message;
  int deletes_won = 0, creates_won = 0;
  for (int i = 0; i < 30; ++i) {
    const std::string name = "t" + std::to_string(i), id = "sb-" + std::to_string(i);
    ASSERT_TRUE(store_->InsertTemplate(Row(org_a_, name, kD1)).ok());
    std::latch start(2);
    Status created, deleted;
    std::thread creator([&] {
      start.arrive_and_wait();
      created = (i % 2 ? *store_ : **other).ReserveSandbox(Sandbox(id, org_a_, name), {"", 0, 0, kD1});
    });
    std::thread deleter([&] {
      start.arrive_and_wait();
      auto d = (i % 2 ? **other : *store_).DeleteTemplate(org_a_, name);
      if (!d) deleted = d.error();
    });
    creator.join();
    deleter.join();
    ASSERT_NE(created.ok(), deleted.ok()) << "round " << i << ": create "
                                          << (created ? "ok" : created.error().message) << ", delete "
                                          << (deleted ? "ok" : deleted.error().message);
    auto sandbox = store_->GetSandbox(org_a_, id);
    auto tpl = store_->GetTemplate(org_a_, name);
    if (created) {
      ++creates_won;
      EXPECT_EQ(deleted.error().code, ErrorCode::kConflict) << deleted.error().message;
      EXPECT_TRUE(sandbox.ok());
      EXPECT_TRUE(tpl.ok()) << "round " << i << ": sandbox " << id << " points at a deleted template";
    } else {
      ++deletes_won;
      EXPECT_EQ(created.error().code, ErrorCode::kConflict) << created.error().message;
      EXPECT_EQ(sandbox.error().code, ErrorCode::kNotFound);
      EXPECT_EQ(tpl.error().code, ErrorCode::kNotFound);
    }
  }
  EXPECT_EQ(deletes_won + creates_won, 30);
}

}  // namespace
}  // namespace osb::store
