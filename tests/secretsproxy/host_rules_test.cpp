#include "secretsproxy/host_rules.h"

#include <gtest/gtest.h>

#include "secretsproxy/address_policy.h"

namespace osb::secretsproxy {
namespace {

struct Case {
  std::vector<std::string> list;
  std::string host;
  bool match;
};

TEST(HostRules, MatchingTable) {
  const Case cases[] = {
      {{}, "anything.example", true},  // empty list = every host
      {{"api.example.com"}, "api.example.com", true},
      {{"api.example.com"}, "API.Example.COM", true},
      {{"api.example.com"}, "api.example.com.", true},
      {{"api.example.com."}, "api.example.com", true},
      {{"api.example.com"}, "api.example.com..", false},
      {{"api.example.com"}, "xapi.example.com", false},
      {{"api.example.com"}, "example.com", false},
      {{"*.example.com"}, "a.example.com", true},
      {{"*.example.com"}, "a.b.example.com", true},
      {{"*.example.com"}, "A.EXAMPLE.com.", true},
      {{"*.example.com"}, "example.com", false},
      {{"*.example.com"}, "badexample.com", false},
      {{"*.example.com"}, "example.com.evil.net", false},
      {{"*.example.com"}, ".example.com", false},
      {{"10.0.0.1"}, "10.0.0.1", true},
      {{"10.0.0.1"}, "10.0.0.2", false},
      {{"*.0.0.1"}, "10.0.0.1", false},  // wildcards never match IP literals
      {{"::1"}, "[::1]", true},
      {{"a.com", "*.b.com"}, "x.b.com", true},
      {{"a.com", "*.b.com"}, "b.com", false},
  };
  for (const auto& c : cases) {
    auto list = HostList::Parse(c.list, "allowlist");
    ASSERT_TRUE(list.ok()) << list.error().message;
    EXPECT_EQ(list->Matches(c.host), c.match) << c.host;
  }
}

TEST(HostRules, InvalidPatternsNameTheField) {
  auto bad = HostList::Parse({"ok.com", "bad host"}, "allowlist");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("allowlist[1]"), std::string::npos);
  EXPECT_FALSE(HostList::Parse({"*."}, "x").ok());
  EXPECT_FALSE(HostList::Parse({""}, "x").ok());
  EXPECT_FALSE(HostList::Parse({"a.*.com"}, "x").ok());
}

TEST(AddressPolicy, RefusesEverythingNotGloballyRoutable) {
  namespace ip = boost::asio::ip;
  AddressPolicy policy;
  for (const char* a : {"127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "224.0.0.1",
                        "255.255.255.255", "::", "::1", "fe80::1", "fc00::1", "fd12::1", "ff02::1",
                        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2001:db8::1"}) {
    EXPECT_FALSE(policy.Allowed(ip::make_address(a))) << a;
  }
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111",
                        "::ffff:8.8.8.8"}) {
    EXPECT_TRUE(policy.Allowed(ip::make_address(a))) << a;
  }
}

TEST(AddressPolicy, ExplicitAllowanceOnlyCoversItsCidr) {
  namespace ip = boost::asio::ip;
  auto cidr = Cidr::Parse("127.0.0.3/32");
  ASSERT_TRUE(cidr.ok());
  AddressPolicy policy({*cidr});
  EXPECT_TRUE(policy.Allowed(ip::make_address("127.0.0.3")));
  EXPECT_TRUE(policy.Allowed(ip::make_address("::ffff:127.0.0.3")));
  EXPECT_FALSE(policy.Allowed(ip::make_address("127.0.0.1")));
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/33").ok());
  EXPECT_FALSE(Cidr::Parse("nonsense").ok());
  auto net = Cidr::Parse("10.0.0.0/8");
  ASSERT_TRUE(net.ok());
  EXPECT_TRUE(net->Contains(ip::make_address("10.255.0.1")));
  EXPECT_FALSE(net->Contains(ip::make_address("11.0.0.1")));
}

}  // namespace
}  // namespace osb::secretsproxy
