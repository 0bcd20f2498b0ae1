#include "secretsproxy/host_rules.h"

#include <gtest/gtest.h>

#include "secretsproxy/address_policy.h"

namespace osb::secretsproxy {
namespace {

namespace ip = boost::asio::ip;

struct Case {
  std::vector<std::string> list;
  std::string host;
  uint16_t port;
  bool match;
};

TEST(HostRules, MatchingTable) {
  const Case cases[] = {
      {{}, "anything.example", 443, false},  // an empty list names nothing (callers decide)
      {{"api.example.com"}, "api.example.com", 443, true},
      {{"api.example.com"}, "API.Example.COM", 443, true},
      {{"api.example.com"}, "api.example.com.", 443, true},
      {{"api.example.com."}, "api.example.com", 443, true},
      {{"api.example.com"}, "api.example.com..", 443, false},
      {{"api.example.com"}, "xapi.example.com", 443, false},
      {{"api.example.com"}, "example.com", 443, false},
      {{"*.example.com"}, "a.example.com", 443, true},
      {{"*.example.com"}, "a.b.example.com", 443, true},
      {{"*.example.com"}, "A.EXAMPLE.com.", 443, true},
      {{"*.example.com"}, "example.com", 443, false},
      {{"*.example.com"}, "badexample.com", 443, false},
      {{"*.example.com"}, "example.com.evil.net", 443, false},
      {{"*.example.com"}, ".example.com", 443, false},
      {{"10.0.0.1"}, "10.0.0.1", 443, true},
      {{"10.0.0.1"}, "10.0.0.2", 443, false},
      {{"*.0.0.1"}, "10.0.0.1", 443, false},  // wildcards never match IP literals
      {{"::1"}, "[::1]", 443, true},
      {{"a.com", "*.b.com"}, "x.b.com", 443, true},
      {{"a.com", "*.b.com"}, "b.com", 443, false},
      // An optional port restricts the entry to that port.
      {{"api.example.com:8443"}, "api.example.com", 8443, true},
      {{"api.example.com:8443"}, "api.example.com", 443, false},
      {{"api.example.com"}, "api.example.com", 8443, true},  // no port = every port
      {{"*.example.com:443"}, "a.example.com", 443, true},
      {{"*.example.com:443"}, "a.example.com", 444, false},
      {{"[::1]:443"}, "::1", 443, true},
      {{"[::1]:443"}, "::1", 80, false},
      {{"10.0.0.1:80"}, "10.0.0.1", 80, true},
      {{"10.0.0.1:80"}, "10.0.0.1", 81, false},
  };
  for (const auto& c : cases) {
    auto list = HostList::Parse(c.list, "allowlist");
    ASSERT_TRUE(list.ok()) << list.error().message;
    EXPECT_EQ(list->Matches(c.host, c.port), c.match) << c.host << ":" << c.port;
  }
}

TEST(HostRules, StarIsAnExplicitOptInAndStandsAlone) {
  auto any = HostList::Parse({"*"}, "allowedHosts", HostList::Star::kAllow);
  ASSERT_TRUE(any.ok()) << any.error().message;
  EXPECT_TRUE(any->any());
  EXPECT_TRUE(any->Matches("whatever.example", 443));
  EXPECT_TRUE(any->Matches("10.0.0.1", 8080));
  // Not in the egress allowlist (an empty allowlist already means every host).
  auto in_allowlist = HostList::Parse({"*"}, "allowlist");
  ASSERT_FALSE(in_allowlist.ok());
  EXPECT_NE(in_allowlist.error().message.find("allowlist[0]"), std::string::npos);
  // Mixed or half-wild forms are refused with the field named.
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"*", "api.test"}, {"api.test", "*"}, {"*:443"}, {"**"}, {"*.*.com"},
        {"a*.com"}, {"*api.com"}, {"api.*"}}) {
    auto r = HostList::Parse(bad, "allowedHosts", HostList::Star::kAllow);
    ASSERT_FALSE(r.ok()) << bad[0];
    EXPECT_NE(r.error().message.find("allowedHosts"), std::string::npos) << r.error().message;
  }
}

TEST(HostRules, InvalidPatternsNameTheField) {
  auto bad = HostList::Parse({"ok.com", "bad host"}, "allowlist");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("allowlist[1]"), std::string::npos);
  for (const char* p : {"*.", "", "a.*.com", "a.com:0", "a.com:65536", "a.com:", "a.com:08", "a.com:x",
                        "[::1", "[nothost]:80", "[::1]80", "http://a.com", "a/b", "a.com:80:80", "-a.com",
                        "a..b"}) {
    auto r = HostList::Parse({p}, "x");
    EXPECT_FALSE(r.ok()) << p;
  }
  // Hostile bytes come back shown, not raw.
  auto ctl = HostList::Parse({std::string("a\r\nb.com")}, "x");
  ASSERT_FALSE(ctl.ok());
  EXPECT_EQ(ctl.error().message.find('\n'), std::string::npos);
}

TEST(HostPattern, CanonicalText) {
  const std::pair<const char*, const char*> cases[] = {
      {"API.Example.COM.", "api.example.com"}, {"*.GitHub.com:443", "*.github.com:443"},
      {"[::1]:8443", "[::1]:8443"},           {"::1", "::1"},
      {"[::1]", "::1"},                       {"10.0.0.1:80", "10.0.0.1:80"},
  };
  for (const auto& [in, out] : cases) {
    auto p = ParseHostPattern(in, "f", false);
    ASSERT_TRUE(p.ok()) << in << ": " << p.error().message;
    EXPECT_EQ(p->Text(), out);
  }
  EXPECT_EQ(ParseHostPattern("*", "f", true)->Text(), "*");
}

// ---- upstream address policy ------------------------------------------

AddressPolicy NoLocal(std::vector<Cidr> allow = {}) {
  return AddressPolicy(std::move(allow), {}, FixedLocalAddresses({}));
}

bool Allowed(const AddressPolicy& p, const char* addr, uint16_t port = 443) {
  return p.Check(ip::make_address(addr), port).allowed;
}

TEST(AddressPolicy, RefusesEverythingNotGloballyRoutable) {
  const AddressPolicy policy = NoLocal();
  for (const char* a : {"127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "224.0.0.1",
                        "255.255.255.255", "::", "::1", "fe80::1", "fc00::1", "fd12::1", "ff02::1",
                        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2001:db8::1"}) {
    EXPECT_FALSE(Allowed(policy, a)) << a;
  }
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111",
                        "::ffff:8.8.8.8"}) {
    EXPECT_TRUE(Allowed(policy, a)) << a;
  }
}

TEST(AddressPolicy, ExplicitAllowanceOnlyCoversItsCidr) {
  auto cidr = Cidr::Parse("127.0.0.3/32");
  ASSERT_TRUE(cidr.ok());
  const AddressPolicy policy = NoLocal({*cidr});
  EXPECT_TRUE(Allowed(policy, "127.0.0.3"));
  EXPECT_TRUE(Allowed(policy, "::ffff:127.0.0.3"));
  EXPECT_FALSE(Allowed(policy, "127.0.0.1"));
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/33").ok());
  EXPECT_FALSE(Cidr::Parse("nonsense").ok());
  auto net = Cidr::Parse("10.0.0.0/8");
  ASSERT_TRUE(net.ok());
  EXPECT_TRUE(net->Contains(ip::make_address("10.255.0.1")));
  EXPECT_FALSE(net->Contains(ip::make_address("11.0.0.1")));
}

TEST(AddressPolicy, OwnDoorsAreRefusedWhateverTheAllowances) {
  // A test allowance covering all of loopback, as the integration tests use.
  std::vector<Cidr> allow = {*Cidr::Parse("127.0.0.0/8"), *Cidr::Parse("::1"), *Cidr::Parse("10.0.0.0/8")};
  AddressPolicy policy(allow, {}, FixedLocalAddresses({ip::make_address("10.9.9.9")}));
  policy.AddOwnDoor({ip::make_address("127.0.0.1"), 8080});      // REST on loopback
  policy.AddOwnDoor({ip::make_address("0.0.0.0"), 7070});        // gRPC on every address
  policy.AddOwnDoor({ip::make_address("::ffff:127.0.0.1"), 53});  // mapped form is the same door
  EXPECT_TRUE(Allowed(policy, "127.0.0.3", 443));  // the test upstream still works
  EXPECT_TRUE(Allowed(policy, "127.0.0.1", 8081));  // another port of the same address
  // REST: the exact door, its mapped twin, and 0.0.0.0 (which reaches loopback).
  for (const char* a : {"127.0.0.1", "::ffff:127.0.0.1", "0.0.0.0", "::"}) {
    auto v = policy.Check(ip::make_address(a), 8080);
    EXPECT_FALSE(v.allowed) << a;
    EXPECT_EQ(v.reason, AddressPolicy::kOwnDoor) << a;
  }
  EXPECT_TRUE(Allowed(policy, "127.0.0.2", 8080));  // not bound there
  // Wildcard door: port 7070 on every local address, none elsewhere.
  for (const char* a : {"127.0.0.1", "127.5.5.5", "::1", "10.9.9.9", "::ffff:10.9.9.9"}) {
    EXPECT_FALSE(Allowed(policy, a, 7070)) << a;
  }
  EXPECT_TRUE(Allowed(policy, "10.9.9.8", 7070));  // allowed private, not ours
  EXPECT_FALSE(Allowed(policy, "127.0.0.1", 53));
  EXPECT_EQ(policy.own_doors().size(), 3u);
  policy.AddOwnDoor({ip::make_address("127.0.0.1"), 8080});  // duplicates are ignored
  EXPECT_EQ(policy.own_doors().size(), 3u);
}

TEST(AddressPolicy, OwnHostAddressesNeedAnExplicitAllowance) {
  // 8.8.4.4 is public but one of this host's interface addresses.
  AddressPolicy policy({}, {}, FixedLocalAddresses({ip::make_address("8.8.4.4"), ip::make_address("2606::5")}));
  for (const char* a : {"8.8.4.4", "::ffff:8.8.4.4", "2606::5"}) {
    auto v = policy.Check(ip::make_address(a), 443);
    EXPECT_FALSE(v.allowed) << a;
    EXPECT_EQ(v.reason, AddressPolicy::kOwnHost) << a;
  }
  EXPECT_TRUE(Allowed(policy, "8.8.8.8"));
  AddressPolicy allowed({*Cidr::Parse("8.8.4.4/32")}, {}, FixedLocalAddresses({ip::make_address("8.8.4.4")}));
  EXPECT_TRUE(Allowed(allowed, "8.8.4.4"));
  allowed.AddOwnDoor({ip::make_address("0.0.0.0"), 9090});
  EXPECT_FALSE(Allowed(allowed, "8.8.4.4", 9090));  // ...but never its doors
}

TEST(AddressPolicy, FilterKeepsTheAllowedAndNamesTheStrongestRefusal) {
  AddressPolicy policy({*Cidr::Parse("127.0.0.0/8")}, {}, FixedLocalAddresses({}));
  policy.AddOwnDoor({ip::make_address("127.0.0.1"), 8080});
  auto f = policy.Filter({ip::make_address("10.0.0.1"), ip::make_address("127.0.0.1")}, 8080);
  EXPECT_TRUE(f.allowed.empty());
  EXPECT_EQ(f.reason, AddressPolicy::kOwnDoor);
  f = policy.Filter({ip::make_address("127.0.0.1"), ip::make_address("8.8.8.8")}, 8080);
  ASSERT_EQ(f.allowed.size(), 1u);
  EXPECT_EQ(f.allowed[0], ip::make_address("8.8.8.8"));
  EXPECT_TRUE(f.reason.empty());
  EXPECT_EQ(policy.Filter({}, 443).reason, AddressPolicy::kPrivate);
}

TEST(AddressPolicy, SystemLocalAddressesKnowLoopbackAndInterfaces) {
  auto local = SystemLocalAddresses();
  EXPECT_TRUE(local->IsLocal(ip::make_address("127.0.0.1")));
  EXPECT_TRUE(local->IsLocal(ip::make_address("::1")));
  EXPECT_TRUE(local->IsLocal(ip::make_address("0.0.0.0")));
  EXPECT_FALSE(local->IsLocal(ip::make_address("192.0.2.77")));  // TEST-NET-1, never configured here
}

TEST(HostPattern, LocalhostAndItsSubdomainsAreLoopbackNames) {
  for (const char* name : {"localhost", "a.localhost", "x.y.localhost"}) EXPECT_TRUE(IsLoopbackName(name)) << name;
  for (const char* name : {"notlocalhost", "localhost.example.com", ".localhost", "localhos", "", "127.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackName(name)) << name;
  }
}

TEST(OwnDoors, ParseEndpoints) {
  auto a = ParseOwnDoors("127.0.0.1:8080", "f");
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].port, 8080);
  auto v6 = ParseOwnDoors("[::]:7070", "f");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE((*v6)[0].address.is_unspecified());
  // localhost is the loopback host whatever /etc/hosts says (RFC 6761).
  auto name = ParseOwnDoors("LocalHost.:7070", "f");
  ASSERT_TRUE(name.ok()) << name.error().message;
  ASSERT_EQ(name->size(), 2u);
  EXPECT_EQ((*name)[0].address, boost::asio::ip::make_address("127.0.0.1"));
  EXPECT_EQ((*name)[1].address, boost::asio::ip::make_address("::1"));
  // An operator's flag: a leading zero is the same port (common/port.h ParsePortFlag).
  auto zero = ParseOwnDoors("127.0.0.1:08080", "f");
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ((*zero)[0].port, 8080);
  for (const char* bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:00000", "127.0.0.1:70000", "127.0.0.1:008080",
                          "127.0.0.1:+80", "::1:80", "[::1]", "a b:80"}) {
    auto r = ParseOwnDoors(bad, "forbidden-endpoints");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("forbidden-endpoints"), std::string::npos);
  }
}

}  // namespace
}  // namespace osb::secretsproxy
