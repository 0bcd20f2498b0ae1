// The secrets proxy (DESIGN.md "Secrets proxy"): a MITM HTTPS proxy that
// swaps sealed tokens for real values on the way out and real values for
// tokens on the way back.
//
// Pipeline (request_pipeline.h: an ordered chain of stages over one
// RequestContext, each continuing or refusing with a status and a reason;
// exchange.cpp: the asynchronous stages, the relays, one refusal path and
// one audit line per request):
//   session lookup by source IP (session_registry)
//   -> SNI / method / target / Host agreement, 421 (request_stages)
//   -> egress allowlist (host_rules)
//   -> strict parsing, smuggling rules 400/431 (http_message, chunked)
//   -> token substitution in target, headers, streamed body (stream_replacer),
//      content-coded bodies decoded and re-encoded (content_coding)
//   -> upstream: an UpstreamDialer — DNS, address policy, connect to the
//      checked address, verified TLS with SNI + hostname check + ALPN
//      http/1.1 (upstream_connector: NetworkDialer)
//   -> response decode (content_decoder) + scrubbing, value -> token, streamed
//   -> audit line (audit) + counters (metrics)
// Bodies held whole in memory are charged to a per-sandbox budget
// (memory_budget.h).
// Listeners: explicit (CONNECT + absolute-form http://), transparent TLS
// (target = ClientHello SNI, sni_parser), transparent plain HTTP (Host).
// The connection loop lives in exchange.cpp, listeners in proxy.cpp.
//
// Error policy: traffic from the sandbox and from upstreams is untrusted. On
// the data path nothing throws and nothing crashes: every malformed input is
// answered with a status (400/403/405/413/421/431/502/503/504) or a closed
// connection, and audited. States that cannot happen (a broken invariant in
// our own code) abort loudly via assert/std::abort rather than continue.
// Secret values never appear in logs, audit lines, metrics or error bodies.
//
// Threading: Start() runs the proxy on its own threads (config.threads) or
// on a caller's io_context; each connection is one coroutine on its own
// strand. All public methods are thread-safe; Stop() is idempotent.
// Start() sets SIGPIPE to SIG_IGN process-wide (TLS writes go straight to the
// sockets; a vanished peer must yield EPIPE, not kill the process).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "secretsproxy/session_registry.h"

namespace boost::asio {
class io_context;
}

namespace osb::secretsproxy {

class OAuthCoordinator;

struct ProxyLimits {
  size_t max_header_bytes = 64 * 1024;       // whole head; larger -> 431
  size_t max_line_bytes = 16 * 1024;         // one line; longer -> 431
  size_t max_header_fields = 200;
  size_t body_buffer_limit = 1024 * 1024;    // Content-Length bodies up to this are
                                             // substituted in memory and keep an exact
                                             // Content-Length; larger ones are re-chunked
  size_t max_connections_per_session = 512;  // counted from accept; beyond -> closed at once
  size_t max_pending_per_session = 64;       // of those, still in handshake or first head
  size_t session_body_budget = 16 * 1024 * 1024;  // bodies held in memory per sandbox at once;
                                                  // past it they stream (plain HTTP: 503)
  size_t leaf_cache_capacity = 1024;
  std::chrono::milliseconds handshake_timeout{10'000};  // ClientHello + TLS handshakes (from accept)
  std::chrono::milliseconds header_timeout{10'000};     // a connection's first head: from accept (or
                                                        // from the TLS handshake's end); later heads:
                                                        // first byte .. end of head
  std::chrono::milliseconds idle_timeout{120'000};      // no byte either way
  std::chrono::milliseconds connect_timeout{10'000};    // DNS + TCP connect upstream
};

struct ProxyConfig {
  std::vector<std::string> listen;                   // explicit proxy, "ADDR:PORT" (port 0 = any)
  std::vector<std::string> transparent_listen;       // redirected TLS (SNI)
  std::vector<std::string> transparent_http_listen;  // redirected plain HTTP (Host)
  std::string metrics_listen;                        // "" = none; GET /metrics
  std::filesystem::path state_dir;                   // CA lives here
  std::string upstream_ca_file;                      // extra trust for upstreams ("" = system store only)
  std::vector<std::string> allow_private;            // CIDRs exempt from the private-address refusal
  // Own doors: "ADDR:PORT" the product listens on (REST, gRPC, DNS,
  // metrics...) that no upstream connection may reach, whatever
  // allow_private says; 0.0.0.0:P / [::]:P = port P on every local address.
  // The proxy adds its own listeners itself (see address_policy.h).
  std::vector<std::string> forbidden_endpoints;
  std::map<std::string, std::string> resolve;        // NAME -> ADDR or ADDR:PORT (tests): replaces DNS
  std::string audit_log;                             // "" = stderr
  uint64_t audit_log_max_bytes = 100ull << 20;       // rotate beyond this (0 = never)
  unsigned audit_log_keep = 5;                       // rotated files kept (audit.log.1 .. .N)
  uint16_t transparent_tls_port = 443;               // upstream port for transparent TLS targets
  uint16_t transparent_http_port = 80;               // default port for transparent plain HTTP
  ProxyLimits limits;
  int threads = 2;                                   // Start() without io_context
  // oauth2-refresh through the control plane (a worker); null = the proxy
  // refreshes alone (oauth_stage.h).
  std::shared_ptr<OAuthCoordinator> oauth_coordinator;
};

class Proxy {
 public:
  Proxy(ProxyConfig config, std::shared_ptr<SessionRegistry> sessions);
  ~Proxy();  // Stop()s
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Validates the config (errors name the field), loads/creates the CA, binds
  // every listener. Runs on config.threads own threads...
  Status Start();
  // ...or on `ioc`, which the caller runs (and must keep alive until Stop()).
  Status Start(boost::asio::io_context& ioc);
  // Closes listeners and every connection; joins own threads.
  void Stop();

  // The CA certificate the sandbox must trust (valid after Start()).
  std::filesystem::path ca_cert_path() const;
  // Bound ports, in config order (useful with port 0).
  std::vector<uint16_t> listen_ports() const;
  std::vector<uint16_t> transparent_ports() const;
  std::vector<uint16_t> transparent_http_ports() const;
  uint16_t metrics_port() const;
  // Adds an own door ("ADDR:PORT", as in forbidden_endpoints) while running,
  // for a port bound after Start() (port 0). Call after Start() (Start
  // rebuilds the policy from the config). Thread-safe.
  Status ForbidEndpoint(const std::string& addr_port);
  // Prometheus text (also served on metrics_listen).
  std::string MetricsText() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace osb::secretsproxy
