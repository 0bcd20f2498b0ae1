// Internal: state shared by every connection of one Proxy (read-only after
// Start, except the thread-safe members). Held by shared_ptr so coroutines
// that outlive Stop() keep it alive.
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
#include "secretsproxy/byte_stream.h"
#include "secretsproxy/certificate_authority.h"
#include "secretsproxy/proxy.h"
#include "secretsproxy/session_registry.h"

namespace osb::secretsproxy {

struct ResolveOverride {
  boost::asio::ip::address address;
  std::optional<uint16_t> port;  // replaces the request's port when set
};

struct ProxyShared {
  ProxyConfig config;
  std::shared_ptr<SessionRegistry> sessions;
  std::unique_ptr<CertificateAuthority> ca;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<boost::asio::ssl::context> upstream_tls;
  AddressPolicy address_policy;
  std::map<std::string, ResolveOverride> resolve;
  // Per-sandbox connection accounting shared by every listener (admission.h).
  std::unique_ptr<AdmissionTables> admission = std::make_unique<AdmissionTables>();

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

}  // namespace osb::secretsproxy
