// IdRegistry: host-wide claims of sandbox uid ranges (no root needed).
#include "sandbox/id_registry.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace osb::sandbox {
namespace {

class IdRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/osb-idreg-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    owners_ = root_ + "/run";
    ASSERT_EQ(mkdir(owners_.c_str(), 0700), 0);
  }
  void TearDown() override { (void)std::system(("rm -rf " + root_).c_str()); }
  // An owner dir that exists, as a sandbox's run dir does while it lives.
  std::string Owner(const std::string& id) {
    std::string dir = owners_ + "/" + id;
    mkdir(dir.c_str(), 0700);
    return dir;
  }
  std::string root_, owners_;
};

TEST_F(IdRegistryTest, ClaimsTheLowestFreeRangeAndReleasesIt) {
  IdRegistry reg(root_ + "/ids", 100000, 3);
  EXPECT_EQ(reg.Claim(Owner("a")).value(), 100000u);
  EXPECT_EQ(reg.Claim(Owner("b")).value(), 165536u);
  EXPECT_EQ(reg.Claim(Owner("c")).value(), 231072u);
  auto full = reg.Claim(Owner("d"));
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, ErrorCode::kUnavailable);
  reg.Release(165536, owners_ + "/b");
  EXPECT_EQ(reg.Claim(owners_ + "/d").value(), 165536u);
  // Only the holder can release.
  reg.Release(100000, owners_ + "/b");
  EXPECT_FALSE(reg.Claim(Owner("e")).ok());
}

TEST_F(IdRegistryTest, AnotherRegistryOnTheSameDirSeesTheClaims) {
  IdRegistry one(root_ + "/ids", 100000, 4), two(root_ + "/ids", 100000, 4);
  EXPECT_EQ(one.Claim(Owner("a")).value(), 100000u);
  EXPECT_EQ(two.Claim(Owner("b")).value(), 165536u);
}

TEST_F(IdRegistryTest, ARangeWhoseOwnerIsGoneIsStaleAndReclaimed) {
  IdRegistry reg(root_ + "/ids", 100000, 2);
  const std::string a = Owner("a");
  EXPECT_EQ(reg.Claim(a).value(), 100000u);
  rmdir(a.c_str());  // its sandbox ended without a Release (a crash)
  EXPECT_EQ(reg.Claim(Owner("b")).value(), 100000u);
}

TEST_F(IdRegistryTest, ClaimExactReadoptsOnlyFreeOrOwnRanges) {
  IdRegistry reg(root_ + "/ids", 100000, 4);
  const std::string a = Owner("a"), b = Owner("b");
  EXPECT_EQ(reg.Claim(a).value(), 100000u);
  EXPECT_TRUE(reg.ClaimExact(100000, a));    // its own: a restarted worker
  EXPECT_FALSE(reg.ClaimExact(100000, b));   // someone else's, alive
  EXPECT_TRUE(reg.ClaimExact(231072, b));    // free
  EXPECT_FALSE(reg.ClaimExact(100001, b));   // not a range start
  EXPECT_FALSE(reg.ClaimExact(100000 + 4 * 65536, b));  // outside the range
  EXPECT_EQ(reg.Claim(Owner("c")).value(), 165536u);
}

}  // namespace
}  // namespace osb::sandbox
