// Stage "upstream address check": which resolved addresses the proxy may
// connect to. Everything that is not globally routable is refused —
// loopback, RFC 1918 private, link-local, CGNAT (100.64/10), multicast,
// unspecified, reserved/benchmark/documentation ranges, IPv6 ULA/link-local,
// and IPv4-mapped/NAT64 forms of those — unless an explicit allowance CIDR
// (`--allow-private`, tests only) contains the address.
// The caller connects to exactly the address it checked (no re-resolution).
// Immutable after construction; thread-safe.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace osb::secretsproxy {

class Cidr {
 public:
  // "10.0.0.0/8", "::1/128", or a bare address (= /32 or /128).
  static Result<Cidr> Parse(std::string_view text);
  bool Contains(const boost::asio::ip::address& addr) const;

 private:
  boost::asio::ip::address base_;
  unsigned prefix_ = 0;
};

// True for globally routable unicast addresses.
bool IsPublicAddress(const boost::asio::ip::address& addr);

class AddressPolicy {
 public:
  AddressPolicy() = default;
  explicit AddressPolicy(std::vector<Cidr> allowances) : allow_(std::move(allowances)) {}
  bool Allowed(const boost::asio::ip::address& addr) const;

 private:
  std::vector<Cidr> allow_;
};

}  // namespace osb::secretsproxy
