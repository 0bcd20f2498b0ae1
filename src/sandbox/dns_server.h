// DnsServer: the worker's DNS responder for sandboxes (UDP and TCP).
//
// It never forwards anything to a real resolver. A query is answered by
// looking up the sandbox by the packet's source address:
//   unknown source                         -> REFUSED
//   name not allowed by that sandbox's allowlist (allowlist.h) -> NXDOMAIN
//   allowed, type A                        -> one A record: the sandbox's
//                                             host-side veth address (its
//                                             443/80 lead to the proxy)
//   allowed, any other type (AAAA, MX, …)  -> NOERROR with no answer
//   malformed / not a standard query       -> FORMERR / NOTIMP, or dropped
// (Other types get NODATA rather than NXDOMAIN because NXDOMAIN asserts the
// name has no records of any type, which would contradict the A answer.)
//
// Listens on one address (default 127.0.0.1: the sandboxes' port-53 flows
// are DNATed there by their nft rules, with their own source address). One
// background thread serves everything with poll().
//
// TCP is accounted per source address (= per sandbox) from accept: at most
// tcpPerSource connections each (a sandbox holding its slots cannot starve
// the others), tcpTotal in all, and each takes one descriptor from the
// worker's budget (common/fd_budget.h). Beyond a cap the connection is
// closed at once, with a rate-limited log line. A connection is closed after
// tcpIdle without a byte, and after tcpLifetime in any case. When accept
// fails (EMFILE, ...) the listener is left out of poll() for 10 ms .. 1 s
// (doubling) instead of spinning.
//
// Thread safety: SetSandbox / RemoveSandbox / Port may be called from any
// thread while it runs. The destructor stops the thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace osb::sandbox {

class DnsServer {
 public:
  struct Options {
    std::string listenAddress = "127.0.0.1";
    uint16_t port = 0;  // 0 = pick a free port (see Port())
    uint32_t ttl = 5;
    size_t tcpPerSource = 16;
    size_t tcpTotal = 512;
    std::chrono::milliseconds tcpIdle{10'000};
    std::chrono::milliseconds tcpLifetime{30'000};
  };

  // Binds UDP and TCP on the same port and starts the thread.
  // kUnavailable when the address/port cannot be bound.
  static Result<std::unique_ptr<DnsServer>> Start(const Options& options);
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  uint16_t Port() const;
  // TCP connections open now (all sources); for tests and metrics.
  size_t TcpConnections() const;

  // Registers (or replaces) the sandbox whose queries come from
  // sandboxAddress; allowed A queries are answered with answerAddress.
  // kInvalidArgument if either is not a dotted IPv4 address.
  Status SetSandbox(const std::string& sandboxAddress, const std::string& answerAddress,
                    std::vector<std::string> allowlist);
  void RemoveSandbox(const std::string& sandboxAddress);

  struct Impl;

 private:
  explicit DnsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace osb::sandbox
