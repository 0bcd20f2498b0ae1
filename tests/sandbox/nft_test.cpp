#include "sandbox/nft.h"

#include <gtest/gtest.h>

namespace osb::sandbox {
namespace {

TEST(NftTest, RulesetMatchesOnlyTheSandboxVethAndAddress) {
  auto names = NamesFor("osb", "my-box");
  EXPECT_EQ(names.netns, "osb-my-box");
  EXPECT_EQ(names.nftTable, "osb_my_box");
  EXPECT_LE(names.hostVeth.size(), 15u);
  AddressLease lease{1, "10.200.0.5", "10.200.0.6"};
  auto rules = BuildRuleset(names, lease, NetworkSpec{3128, 3129, 3130, 5353});
  EXPECT_NE(rules.find("ip saddr != 10.200.0.6 drop"), std::string::npos);
  EXPECT_NE(rules.find("tcp dport 443 dnat ip to 127.0.0.1:3129"), std::string::npos);
  EXPECT_NE(rules.find("tcp dport 80 dnat ip to 127.0.0.1:3130"), std::string::npos);
  EXPECT_NE(rules.find("udp dport 53 dnat ip to 127.0.0.1:5353"), std::string::npos);
  EXPECT_NE(rules.find("ip daddr 10.200.0.5 tcp dport 3128 dnat ip to 127.0.0.1:3128"), std::string::npos);
  EXPECT_NE(rules.find("meta nfproto ipv6 drop"), std::string::npos);
  EXPECT_NE(rules.find("iifname \"" + names.hostVeth + "\" drop"), std::string::npos);
}

TEST(NftTest, AddressPoolHandsOutDistinctBlocks) {
  auto pool = AddressPool::Create("10.200.0.0/29");
  ASSERT_TRUE(pool.ok());
  auto a = (*pool)->Allocate();
  auto b = (*pool)->Allocate();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->hostAddress, "10.200.0.1");
  EXPECT_EQ(a->sandboxAddress, "10.200.0.2");
  EXPECT_EQ(b->sandboxAddress, "10.200.0.6");
  EXPECT_EQ((*pool)->Allocate().error().code, ErrorCode::kUnavailable);
  (*pool)->Release(a->block);
  EXPECT_TRUE((*pool)->Allocate().ok());
  EXPECT_FALSE(AddressPool::Create("10.200.0.0/30").ok());
  EXPECT_FALSE(AddressPool::Create("nonsense").ok());
}

}  // namespace
}  // namespace osb::sandbox
