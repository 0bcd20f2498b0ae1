// Internal: state shared by every connection of one Proxy (read-only after
// Start, except the thread-safe members). Held by shared_ptr so coroutines
// that outlive Stop() keep it alive. Only the listeners and Proxy see it;
// the request path gets the narrow ExchangeEnv (exchange.h), the dialer
// only what it dials with.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "secretsproxy/address_policy.h"
#include "secretsproxy/admission.h"
#include "secretsproxy/audit.h"
#include "secretsproxy/exchange.h"
#include "secretsproxy/metrics.h"
#include "secretsproxy/byte_stream.h"
#include "secretsproxy/certificate_authority.h"
#include "secretsproxy/proxy.h"
#include "secretsproxy/session_registry.h"
#include "secretsproxy/upstream_connector.h"

namespace osb::secretsproxy {

struct ProxyShared {
  ProxyConfig config;
  std::shared_ptr<SessionRegistry> sessions;
  std::unique_ptr<CertificateAuthority> ca;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<Metrics> metrics = std::make_unique<Metrics>();
  std::unique_ptr<boost::asio::ssl::context> upstream_tls;
  AddressPolicy address_policy;
  std::map<std::string, ResolveOverride> resolve;
  // Per-sandbox connection accounting shared by every listener (admission.h).
  std::unique_ptr<AdmissionTables> admission = std::make_unique<AdmissionTables>();
  std::unique_ptr<UpstreamDialer> dialer;  // a NetworkDialer over the three above
  // Shared state of the signing stages (signing_stage.h): set up by Start.
  std::unique_ptr<SigningEnv> signing = std::make_unique<SigningEnv>();

  // What one client connection's exchange needs (borrowed: the listener's
  // coroutine holds this ProxyShared until ServeHttp returns).
  ExchangeEnv Env() const {
    return ExchangeEnv{&config.limits, config.transparent_http_port, sessions.get(), dialer.get(), audit.get(),
                       metrics.get(), signing.get()};
  }

  // Live client streams, closed by Stop().
  std::mutex live_mu;
  std::set<std::weak_ptr<ByteStream>, std::owner_less<std::weak_ptr<ByteStream>>> live;
  bool stopping = false;
  void Track(const std::shared_ptr<ByteStream>& s) {
    std::lock_guard lock(live_mu);
    live.insert(s);
  }
  void Untrack(const std::shared_ptr<ByteStream>& s) {
    std::lock_guard lock(live_mu);
    live.erase(s);
  }
};

// The listeners' entry into the exchange: the narrow ExchangeEnv, with
// `shared` kept alive until the connection ends.
inline boost::asio::awaitable<void> ServeHttp(std::shared_ptr<ProxyShared> shared, std::shared_ptr<ByteStream> client,
                                              ExchangeOptions options) {
  const ExchangeEnv env = shared->Env();
  co_await ServeHttp(env, std::move(client), std::move(options));
}

}  // namespace osb::secretsproxy
