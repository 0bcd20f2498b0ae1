// Image templates in the store (migration 9), on the backend selected by
// OSB_TEST_DB (registered for both SQLite and PostgreSQL).
#include <gtest/gtest.h>

#include "store/store.h"
#include "test_db.h"

namespace osb::store {
namespace {

class StoreTemplatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = OpenStore(osb::testing::FreshDatabaseUrl());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(*opened);
    org_a_ = store_->EnsureOrg("a")->id;
    org_b_ = store_->EnsureOrg("b")->id;
  }
  TemplateRow Row(const std::string& org, const std::string& name, const std::string& digest) {
    return {NewId("tpl"), org, name, digest, int64_t{5} << 32, NowRfc3339()};
  }
  std::unique_ptr<Store> store_;
  std::string org_a_, org_b_;
};

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');

TEST_F(StoreTemplatesTest, SchemaHasMigrationNine) { EXPECT_GE(*store_->SchemaVersion(), 9); }

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

}  // namespace
}  // namespace osb::store
