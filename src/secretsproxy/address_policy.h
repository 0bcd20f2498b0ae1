// Stage "upstream address check": which resolved address:port the proxy may
// connect to. In order:
//  1. Own doors — never any address:port the product itself listens on
//     (the proxy's listeners, added by Proxy::Start; REST, gRPC, DNS and
//     metrics, added by the worker / `osb dev` through
//     ProxyConfig::forbidden_endpoints), whatever the allowances say. A door
//     bound to a wildcard (0.0.0.0:P, [::]:P) forbids port P on every local
//     address; 0.0.0.0 / :: as a destination reach the local host and count
//     as every door's address.
//  2. The host's own addresses (loopback, 0.0.0.0/8, ::, and every interface
//     address, public ones included) are refused unless an allowance CIDR
//     contains the address.
//  3. Everything that is not globally routable is refused — RFC 1918
//     private, link-local, CGNAT (100.64/10), multicast, reserved /
//     benchmark / documentation ranges, IPv6 ULA/link-local, and
//     IPv4-mapped/NAT64 forms of those — unless an allowance contains it.
// Allowances come from `--allow-private` (tests only).
// The caller connects to exactly the address it checked (no re-resolution).
// Thread-safe: every method may be called concurrently (doors can be added
// while traffic flows: a port bound after the proxy started, e.g. port 0).
// Copies share one door list.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
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

// An address:port the product listens on. An unspecified address (0.0.0.0,
// ::) = that port on every local address.
struct OwnDoor {
  boost::asio::ip::address address;
  uint16_t port = 0;
};

// "ADDR:PORT", "[V6]:PORT" or "NAME:PORT" (NAME resolved now, every address
// kept: "localhost:7070" -> 127.0.0.1 and ::1). Errors name `field`.
Result<std::vector<OwnDoor>> ParseOwnDoors(std::string_view text, std::string_view field);

// Which addresses are this host's own. The system one lists the interfaces
// (getifaddrs) and refreshes the list when an address is not in it (at once
// for non-public addresses, at most once a second otherwise), so a veth
// added a moment ago is known.
class LocalAddresses {
 public:
  virtual ~LocalAddresses() = default;
  // Loopback, 0.0.0.0/8 and :: are always local.
  virtual bool IsLocal(const boost::asio::ip::address& addr) const = 0;
};
std::shared_ptr<const LocalAddresses> SystemLocalAddresses();
std::shared_ptr<const LocalAddresses> FixedLocalAddresses(std::vector<boost::asio::ip::address> addresses);

class AddressPolicy {
 public:
  static constexpr std::string_view kOwnDoor =
      "destination is one of this host's own service ports (proxy, REST, gRPC, DNS, metrics)";
  static constexpr std::string_view kOwnHost = "destination is an address of the proxy's own host";
  static constexpr std::string_view kPrivate =
      "destination resolves only to private, loopback, link-local or reserved addresses";

  AddressPolicy();
  explicit AddressPolicy(std::vector<Cidr> allowances, std::vector<OwnDoor> doors = {},
                         std::shared_ptr<const LocalAddresses> local = SystemLocalAddresses());
  void AddOwnDoor(OwnDoor door);

  struct Verdict {
    bool allowed = false;
    std::string_view reason;  // one of the constants above when refused
  };
  Verdict Check(const boost::asio::ip::address& addr, uint16_t port) const;

  // The candidates that may be connected to, in order; when none may, the
  // reason of the most specific refusal (own door > own host > private).
  struct Filtered {
    std::vector<boost::asio::ip::address> allowed;
    std::string_view reason;
  };
  Filtered Filter(const std::vector<boost::asio::ip::address>& candidates, uint16_t port) const;

  std::vector<OwnDoor> own_doors() const;

 private:
  struct Doors {
    std::mutex mu;
    std::shared_ptr<const std::vector<OwnDoor>> list = std::make_shared<const std::vector<OwnDoor>>();
  };
  bool Allowance(const boost::asio::ip::address& addr) const;
  std::vector<Cidr> allow_;
  std::shared_ptr<Doors> doors_ = std::make_shared<Doors>();
  std::shared_ptr<const LocalAddresses> local_;
};

}  // namespace osb::secretsproxy
