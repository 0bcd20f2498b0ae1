// NetworkDialer, the real UpstreamDialer: resolve the target (or use a
// --resolve override), keep only addresses the AddressPolicy allows, connect
// to exactly one of those checked addresses (no second resolution, so no
// rebinding window), then — for HTTPS — a TLS handshake verified against the
// system store plus the optional extra CA, with SNI, hostname (or IP)
// verification and ALPN http/1.1. Failures come back as an HTTP status for
// the client (403 address refused, 502 DNS/connect/TLS failure, 504 timeout)
// and a fixed reason text; connect and TLS failures count in
// Metrics::upstream_errors. Runs on the calling connection's executor.
// Borrows everything it is given: the owner (ProxyShared) outlives it.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ip/address.hpp>
#include <map>
#include <optional>
#include <string>

#include "secretsproxy/address_policy.h"
#include "secretsproxy/metrics.h"
#include "secretsproxy/proxy.h"
#include "secretsproxy/upstream_dialer.h"

namespace osb::secretsproxy {

struct ResolveOverride {
  boost::asio::ip::address address;
  std::optional<uint16_t> port;  // replaces the request's port when set
};

class NetworkDialer final : public UpstreamDialer {
 public:
  NetworkDialer(const ProxyLimits& limits, const std::map<std::string, ResolveOverride>& resolve,
                const AddressPolicy& policy, SSL_CTX* tls, Metrics& metrics)
      : limits_(limits), resolve_(resolve), policy_(policy), tls_(tls), metrics_(metrics) {}
  boost::asio::awaitable<UpstreamConnection> Dial(Target target, bool tls) override;
  boost::asio::awaitable<UpstreamConnection> Precheck(Target target) override;

 private:
  // Resolution (or a --resolve override) then the address policy. On
  // success `checked->allowed` is non-empty and *port is the port to dial.
  boost::asio::awaitable<UpstreamConnection> Resolve(const Target& target, uint16_t* port,
                                                     AddressPolicy::Filtered* checked);
  const ProxyLimits& limits_;
  const std::map<std::string, ResolveOverride>& resolve_;
  const AddressPolicy& policy_;
  SSL_CTX* tls_;
  Metrics& metrics_;
};

}  // namespace osb::secretsproxy
