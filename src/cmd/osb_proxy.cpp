// osb proxy: run the secrets proxy alone (tests, benchmarks, debugging).
// Sessions come from --sessions FILE (re-read on SIGHUP); see docs/proxy.md.
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cmd/osb_command.h"
#include "common/fd_budget.h"
#include "common/log.h"
#include "common/secure_memory.h"
#include "secretsproxy/proxy.h"
#include "secretsproxy/sessions_file.h"

namespace {

namespace sp = osb::secretsproxy;

struct ProxyFlags {
  std::vector<std::string> listen;
  std::vector<std::string> transparent_listen;
  std::vector<std::string> transparent_http_listen;
  std::string metrics_listen;
  std::string state_dir;
  std::string sessions;
  std::string upstream_ca;
  std::vector<std::string> allow_private;
  std::vector<std::string> forbidden_endpoints;
  std::vector<std::string> resolve;
  std::string audit_log;
  std::string ready_file;
  int threads = 2;
  size_t max_connections_per_session = 512;
  size_t session_body_budget = 16 * 1024 * 1024;
  int64_t handshake_timeout_ms = 10'000;
  int64_t header_timeout_ms = 10'000;
  size_t max_pending_per_session = 64;
  uint64_t audit_log_max_bytes = 100ull << 20;
  unsigned audit_log_keep = 5;
  size_t fd_reserve = 0;
  int64_t idle_timeout_ms = 120'000;
  uint16_t transparent_port = 443;
};

// Registers every session of the file; on reload, replaces the previous set.
bool LoadSessions(const std::string& path, sp::SessionRegistry& reg, std::vector<std::string>* ids) {
  auto entries = sp::LoadSessionsFile(path);
  if (!entries) {
    std::cerr << "error: " << entries.error().message << "\n";
    return false;
  }
  for (const auto& id : *ids) (void)reg.Unregister(id);
  ids->clear();
  bool ok = true;
  for (size_t i = 0; i < entries->size(); ++i) {
    auto& e = (*entries)[i];
    std::string id = e.session.sandbox_id;
    auto st = reg.Register(e.source, std::move(e.session));
    if (!st) {
      std::cerr << "error: sessions[" << i << "]: " << st.error().message << "\n";
      ok = false;
    } else {
      ids->push_back(id);
    }
  }
  return ok;
}

int RunProxy(const ProxyFlags& f) {
  osb::MakeProcessUndumpable();  // it holds secret values (its sessions)
  sp::ProxyConfig config;
  config.listen = f.listen;
  config.transparent_listen = f.transparent_listen;
  config.transparent_http_listen = f.transparent_http_listen;
  config.metrics_listen = f.metrics_listen;
  config.state_dir = f.state_dir;
  config.upstream_ca_file = f.upstream_ca;
  config.allow_private = f.allow_private;
  config.forbidden_endpoints = f.forbidden_endpoints;
  config.audit_log = f.audit_log;
  config.threads = f.threads;
  config.transparent_tls_port = f.transparent_port;
  config.limits.max_connections_per_session = f.max_connections_per_session;
  config.limits.max_pending_per_session = f.max_pending_per_session;
  config.audit_log_max_bytes = f.audit_log_max_bytes;
  config.audit_log_keep = f.audit_log_keep;
  config.limits.session_body_budget = f.session_body_budget;
  if (f.handshake_timeout_ms <= 0 || f.header_timeout_ms <= 0 || f.idle_timeout_ms <= 0) {
    std::cerr << "error: --*-timeout-ms: must be positive\n";
    return 2;
  }
  config.limits.handshake_timeout = std::chrono::milliseconds(f.handshake_timeout_ms);
  config.limits.header_timeout = std::chrono::milliseconds(f.header_timeout_ms);
  config.limits.idle_timeout = std::chrono::milliseconds(f.idle_timeout_ms);
  for (const auto& r : f.resolve) {
    const auto eq = r.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "error: --resolve: expected NAME=ADDR[:PORT], got '" << r << "'\n";
      return 2;
    }
    config.resolve[r.substr(0, eq)] = r.substr(eq + 1);
  }
  if (config.listen.empty() && config.transparent_listen.empty() && config.transparent_http_listen.empty()) {
    config.listen.push_back("127.0.0.1:3128");
  }
  std::cerr << "osb proxy: " << osb::InitProcessFdBudget(f.fd_reserve) << "\n";

  auto registry = std::make_shared<sp::SessionRegistry>();
  std::vector<std::string> ids;
  if (!f.sessions.empty() && !LoadSessions(f.sessions, *registry, &ids)) return 2;

  // Block the signals we wait for before any thread starts.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  sp::Proxy proxy(config, registry);
  auto st = proxy.Start();
  if (!st) {
    std::cerr << "error: " << st.error().message << "\n";
    return 2;
  }
  nlohmann::json ready;
  ready["listen"] = proxy.listen_ports();
  ready["transparentListen"] = proxy.transparent_ports();
  ready["transparentHttpListen"] = proxy.transparent_http_ports();
  ready["metricsPort"] = proxy.metrics_port();
  ready["caCert"] = proxy.ca_cert_path().string();
  ready["pid"] = getpid();
  std::cout << "osb proxy ready " << ready.dump() << std::endl;
  if (!f.ready_file.empty()) {
    const std::string tmp = f.ready_file + ".tmp";
    std::ofstream(tmp) << ready.dump() << "\n";
    std::rename(tmp.c_str(), f.ready_file.c_str());
  }
  while (true) {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGHUP && !f.sessions.empty()) {
      LoadSessions(f.sessions, *registry, &ids);
      std::cerr << "osb proxy: sessions reloaded\n";
      continue;
    }
    if (sig == SIGINT || sig == SIGTERM) break;
  }
  proxy.Stop();
  return 0;
}

const bool registered = osb::cmd::RegisterOsbCommand(40, [](CLI::App& root, int& exit_code) {
  auto* sub = root.add_subcommand("proxy", "Run the secrets proxy alone (sessions from a JSON file)");
  auto f = std::make_shared<ProxyFlags>();
  sub->add_option("--listen", f->listen, "Explicit proxy listener ADDR:PORT (CONNECT + http://); repeatable. "
                                         "Default 127.0.0.1:3128 when no listener is given");
  sub->add_option("--transparent-listen", f->transparent_listen,
                  "Transparent TLS listener ADDR:PORT (target = ClientHello SNI); repeatable");
  sub->add_option("--transparent-http-listen", f->transparent_http_listen,
                  "Transparent plain-HTTP listener ADDR:PORT (target = Host); repeatable");
  sub->add_option("--transparent-upstream-port", f->transparent_port,
                  "Upstream port for transparent TLS targets (default 443)");
  sub->add_option("--metrics-listen", f->metrics_listen, "Prometheus metrics endpoint ADDR:PORT");
  sub->add_option("--state-dir", f->state_dir, "Directory holding the proxy CA (ca.key mode 0600, ca.crt)")
      ->required();
  sub->add_option("--sessions", f->sessions,
                  "JSON list of {source, sandboxId, allowlist, secrets:[{name, token, value, allowedHosts}]}; "
                  "re-read on SIGHUP");
  sub->add_option("--upstream-ca", f->upstream_ca, "Extra CA bundle trusted for upstreams (PEM)");
  sub->add_option("--allow-private", f->allow_private,
                  "CIDR that may be connected to despite being private/loopback (tests); repeatable");
  sub->add_option("--forbid-endpoint", f->forbidden_endpoints,
                  "ADDR:PORT never connected to, whatever --allow-private says (another service on this host); "
                  "0.0.0.0:PORT = that port on every local address; the proxy's own listeners are added "
                  "automatically; repeatable");
  sub->add_option("--resolve", f->resolve, "NAME=ADDR[:PORT] overriding DNS for NAME (tests); repeatable");
  sub->add_option("--audit-log", f->audit_log, "Append audit JSON lines to FILE (default stderr)");
  sub->add_option("--ready-file", f->ready_file, "Write bound ports as JSON to FILE once listening");
  sub->add_option("--threads", f->threads, "Worker threads (default 2)");
  sub->add_option("--max-connections-per-session", f->max_connections_per_session,
                  "Cap on live connections per sandbox, counted from accept (default 512)");
  sub->add_option("--max-pending-per-session", f->max_pending_per_session,
                  "Cap on a sandbox's connections still in their TLS handshake or first request head (default 64)");
  sub->add_option("--audit-log-max-bytes", f->audit_log_max_bytes,
                  "Rotate the audit log file beyond this size (default 100 MiB; 0 = never)");
  sub->add_option("--audit-log-keep", f->audit_log_keep, "Rotated audit log files kept (default 5)");
  sub->add_option("--fd-reserve", f->fd_reserve,
                  "Descriptors kept free for the process itself; sandbox connections are refused before "
                  "(default min(limit/4, 1024))");
  sub->add_option("--session-body-budget", f->session_body_budget,
                  "Bytes of request/response bodies held in memory per sandbox at once; past it bodies "
                  "stream, plain-HTTP request bodies get 503 (default 16 MiB)");
  sub->add_option("--handshake-timeout-ms", f->handshake_timeout_ms, "ClientHello + TLS handshake timeout");
  sub->add_option("--header-timeout-ms", f->header_timeout_ms, "Request head timeout (a connection's first head: from accept)");
  sub->add_option("--idle-timeout-ms", f->idle_timeout_ms, "Idle timeout (no byte either way)");
  sub->callback([f, &exit_code] { exit_code = RunProxy(*f); });
});

}  // namespace
