#include "secretsproxy/address_policy.h"

#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>

#include "common/host_pattern.h"
#include "common/port.h"

namespace osb::secretsproxy {
namespace ip = boost::asio::ip;
namespace {

bool PrefixEqual(const uint8_t* a, const uint8_t* b, unsigned bits) {
  unsigned full = bits / 8;
  for (unsigned i = 0; i < full; ++i) {
    if (a[i] != b[i]) return false;
  }
  unsigned rem = bits % 8;
  if (rem == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rem));
  return (a[full] & mask) == (b[full] & mask);
}

struct V4Range {
  std::array<uint8_t, 4> base;
  unsigned bits;
};

bool PublicV4(const ip::address_v4& a) {
  static const V4Range kBlocked[] = {
      {{0, 0, 0, 0}, 8},        {{10, 0, 0, 0}, 8},     {{100, 64, 0, 0}, 10},
      {{127, 0, 0, 0}, 8},      {{169, 254, 0, 0}, 16}, {{172, 16, 0, 0}, 12},
      {{192, 0, 0, 0}, 24},     {{192, 0, 2, 0}, 24},   {{192, 88, 99, 0}, 24},
      {{192, 168, 0, 0}, 16},   {{198, 18, 0, 0}, 15},  {{198, 51, 100, 0}, 24},
      {{203, 0, 113, 0}, 24},   {{224, 0, 0, 0}, 4},    {{240, 0, 0, 0}, 4},
  };
  auto bytes = a.to_bytes();
  for (const auto& r : kBlocked) {
    if (PrefixEqual(bytes.data(), r.base.data(), r.bits)) return false;
  }
  return true;
}

ip::address Unmap(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

// Loopback, "this host" (0.0.0.0/8) and the unspecified IPv6 address.
bool AlwaysLocal(const ip::address& a) {
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    return b[0] == 127 || b[0] == 0;
  }
  return a.to_v6().is_loopback() || a.to_v6().is_unspecified();
}

class FixedLocal final : public LocalAddresses {
 public:
  explicit FixedLocal(std::vector<ip::address> a) : addrs_(std::move(a)) {
    for (auto& x : addrs_) x = Unmap(x);
  }
  bool IsLocal(const ip::address& raw) const override {
    const ip::address a = Unmap(raw);
    return AlwaysLocal(a) || std::find(addrs_.begin(), addrs_.end(), a) != addrs_.end();
  }

 private:
  std::vector<ip::address> addrs_;
};

std::vector<ip::address> InterfaceAddresses() {
  std::vector<ip::address> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      ip::address_v4::bytes_type b;
      std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
      out.push_back(ip::address_v4(b));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      ip::address_v6::bytes_type b;
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      std::memcpy(b.data(), &sin6->sin6_addr, 16);
      out.push_back(ip::address_v6(b, sin6->sin6_scope_id));
    }
  }
  freeifaddrs(list);
  for (auto& a : out) {
    a = Unmap(a);
    if (a.is_v6()) {  // compare without the scope (fe80::1%eth0 == fe80::1)
      auto v6 = a.to_v6();
      v6.scope_id(0);
      a = v6;
    }
  }
  return out;
}

class SystemLocal final : public LocalAddresses {
 public:
  bool IsLocal(const ip::address& raw) const override {
    ip::address a = Unmap(raw);
    if (a.is_v6()) {
      auto v6 = a.to_v6();
      v6.scope_id(0);
      a = v6;
    }
    if (AlwaysLocal(a)) return true;
    std::lock_guard lock(mu_);
    if (std::find(addrs_.begin(), addrs_.end(), a) != addrs_.end()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (loaded_ && IsPublicAddress(a) && now - loaded_at_ < std::chrono::seconds(1)) return false;
    addrs_ = InterfaceAddresses();
    loaded_ = true;
    loaded_at_ = now;
    return std::find(addrs_.begin(), addrs_.end(), a) != addrs_.end();
  }

 private:
  mutable std::mutex mu_;
  mutable std::vector<ip::address> addrs_;
  mutable bool loaded_ = false;
  mutable std::chrono::steady_clock::time_point loaded_at_;
};

}  // namespace

std::shared_ptr<const LocalAddresses> SystemLocalAddresses() {
  static const auto kSystem = std::make_shared<const SystemLocal>();
  return kSystem;
}

std::shared_ptr<const LocalAddresses> FixedLocalAddresses(std::vector<ip::address> addresses) {
  return std::make_shared<const FixedLocal>(std::move(addresses));
}

Result<std::vector<OwnDoor>> ParseOwnDoors(std::string_view text, std::string_view field) {
  const std::string s(text);
  auto bad = [&](const std::string& why) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(field) + ": '" + s + "': " + why);
  };
  std::string host, port_text;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return bad("expected [ADDR]:PORT");
    }
    host = s.substr(1, close - 1);
    port_text = s.substr(close + 2);
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string::npos || s.find(':') != colon) return bad("expected ADDR:PORT");
    host = s.substr(0, colon);
    port_text = s.substr(colon + 1);
  }
  uint16_t port = 0;
  if (!ParsePortFlag(port_text, &port)) return bad("port must be 1-65535");
  std::vector<OwnDoor> out;
  if (host.empty()) host = "0.0.0.0";  // ":8080" binds every address
  boost::system::error_code ec;
  auto addr = ip::make_address(host, ec);
  if (!ec) {
    out.push_back({Unmap(addr), port});
    return out;
  }
  if (IsLoopbackName(NormalizeHostName(host))) {
    out.push_back({ip::address_v4::loopback(), port});
    out.push_back({ip::address_v6::loopback(), port});
    return out;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return bad("cannot resolve the name");
  for (addrinfo* r = res; r != nullptr; r = r->ai_next) {
    if (r->ai_family == AF_INET) {
      ip::address_v4::bytes_type b;
      std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in*>(r->ai_addr)->sin_addr, 4);
      out.push_back({ip::address_v4(b), port});
    } else if (r->ai_family == AF_INET6) {
      ip::address_v6::bytes_type b;
      std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in6*>(r->ai_addr)->sin6_addr, 16);
      out.push_back({Unmap(ip::address_v6(b)), port});
    }
  }
  freeaddrinfo(res);
  if (out.empty()) return bad("cannot resolve the name");
  return out;
}

Result<Cidr> Cidr::Parse(std::string_view text) {
  std::string s(text);
  std::string addr_part = s;
  int prefix = -1;
  if (auto slash = s.find('/'); slash != std::string::npos) {
    addr_part = s.substr(0, slash);
    std::string p = s.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument, "allow-private: invalid prefix length in '" + s + "'");
    }
    prefix = std::stoi(p);
  }
  boost::system::error_code ec;
  auto addr = ip::make_address(addr_part, ec);
  if (ec) return MakeError(ErrorCode::kInvalidArgument, "allow-private: invalid address in '" + s + "'");
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = ip::make_address_v4(ip::v4_mapped, addr.to_v6());
  int max = addr.is_v4() ? 32 : 128;
  if (prefix < 0) prefix = max;
  if (prefix > max) return MakeError(ErrorCode::kInvalidArgument, "allow-private: prefix too long in '" + s + "'");
  Cidr c;
  c.base_ = addr;
  c.prefix_ = static_cast<unsigned>(prefix);
  return c;
}

bool Cidr::Contains(const ip::address& raw) const {
  ip::address addr = raw;
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = ip::make_address_v4(ip::v4_mapped, addr.to_v6());
  if (addr.is_v4() != base_.is_v4()) return false;
  if (addr.is_v4()) {
    auto a = addr.to_v4().to_bytes(), b = base_.to_v4().to_bytes();
    return PrefixEqual(a.data(), b.data(), prefix_);
  }
  auto a = addr.to_v6().to_bytes(), b = base_.to_v6().to_bytes();
  return PrefixEqual(a.data(), b.data(), prefix_);
}

bool IsPublicAddress(const ip::address& addr) {
  if (addr.is_v4()) return PublicV4(addr.to_v4());
  const auto v6 = addr.to_v6();
  if (v6.is_v4_mapped()) return PublicV4(ip::make_address_v4(ip::v4_mapped, v6));
  auto b = v6.to_bytes();
  // NAT64 64:ff9b::/96 embeds an IPv4 address: judge that.
  static const uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (PrefixEqual(b.data(), kNat64, 96)) {
    return PublicV4(ip::address_v4({b[12], b[13], b[14], b[15]}));
  }
  if (v6.is_unspecified() || v6.is_loopback() || v6.is_multicast() || v6.is_link_local() ||
      v6.is_site_local()) {
    return false;
  }
  if ((b[0] & 0xfe) == 0xfc) return false;                        // fc00::/7 ULA
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false;  // 2001:db8::/32 doc
  if (b[0] == 0x01 && b[1] == 0x00 && b[2] == 0 && b[3] == 0 && b[4] == 0 && b[5] == 0 && b[6] == 0 &&
      b[7] == 0) {
    return false;  // 100::/64 discard
  }
  return (b[0] & 0xe0) == 0x20;  // only 2000::/3 is global unicast
}

AddressPolicy::AddressPolicy() : local_(SystemLocalAddresses()) {}

AddressPolicy::AddressPolicy(std::vector<Cidr> allowances, std::vector<OwnDoor> doors,
                             std::shared_ptr<const LocalAddresses> local)
    : allow_(std::move(allowances)), local_(std::move(local)) {
  for (auto& d : doors) AddOwnDoor(d);
}

void AddressPolicy::AddOwnDoor(OwnDoor door) {
  door.address = Unmap(door.address);
  std::lock_guard lock(doors_->mu);
  for (const auto& d : *doors_->list) {
    if (d.address == door.address && d.port == door.port) return;
  }
  auto next = std::make_shared<std::vector<OwnDoor>>(*doors_->list);
  next->push_back(door);
  doors_->list = std::move(next);
}

std::vector<OwnDoor> AddressPolicy::own_doors() const {
  std::lock_guard lock(doors_->mu);
  return *doors_->list;
}

bool AddressPolicy::Allowance(const ip::address& addr) const {
  return std::any_of(allow_.begin(), allow_.end(), [&](const Cidr& c) { return c.Contains(addr); });
}

AddressPolicy::Verdict AddressPolicy::Check(const ip::address& raw, uint16_t port) const {
  const ip::address addr = Unmap(raw);
  const bool to_unspecified = addr.is_unspecified() || (addr.is_v4() && addr.to_v4().to_bytes()[0] == 0);
  bool local_known = false, local = false;
  auto is_local = [&] {
    if (!local_known) local = local_->IsLocal(addr), local_known = true;
    return local;
  };
  std::shared_ptr<const std::vector<OwnDoor>> doors;
  {
    std::lock_guard lock(doors_->mu);
    doors = doors_->list;
  }
  for (const auto& d : *doors) {
    if (d.port != port) continue;
    if (d.address == addr || to_unspecified || (d.address.is_unspecified() && is_local())) {
      return {false, kOwnDoor};
    }
  }
  const bool allowance = Allowance(addr);
  if (!allowance && is_local()) return {false, kOwnHost};
  if (allowance || IsPublicAddress(addr)) return {true, {}};
  return {false, kPrivate};
}

AddressPolicy::Filtered AddressPolicy::Filter(const std::vector<ip::address>& candidates, uint16_t port) const {
  Filtered out;
  auto rank = [](std::string_view r) { return r == kOwnDoor ? 3 : r == kOwnHost ? 2 : 1; };
  for (const auto& a : candidates) {
    const Verdict v = Check(a, port);
    if (v.allowed) {
      out.allowed.push_back(a);
    } else if (out.reason.empty() || rank(v.reason) > rank(out.reason)) {
      out.reason = v.reason;
    }
  }
  if (!out.allowed.empty()) out.reason = {};
  if (out.allowed.empty() && out.reason.empty()) out.reason = kPrivate;  // no candidates at all
  return out;
}

}  // namespace osb::secretsproxy
