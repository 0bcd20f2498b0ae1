#include "secretsproxy/address_policy.h"

#include <array>
#include <cstdint>
#include <string>

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

}  // namespace

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

bool AddressPolicy::Allowed(const ip::address& addr) const {
  if (IsPublicAddress(addr)) return true;
  for (const auto& c : allow_) {
    if (c.Contains(addr)) return true;
  }
  return false;
}

}  // namespace osb::secretsproxy
