#include "secretsproxy/proxy.h"

#include <openssl/ssl.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <csignal>
#include <functional>
#include <thread>

#include "common/accept_backoff.h"
#include "common/log.h"
#include "common/port.h"
#include "common/rate_limited_log.h"
#include "secretsproxy/host_rules.h"
#include "secretsproxy/listeners.h"
#include "secretsproxy/proxy_shared.h"
#include "secretsproxy/signing_stage.h"

#include <spdlog/spdlog.h>

namespace osb::secretsproxy {
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

using Handler = asio::awaitable<void> (*)(std::shared_ptr<ProxyShared>, tcp::socket);

struct Proxy::Impl {
  std::shared_ptr<ProxyShared> shared = std::make_shared<ProxyShared>();
  std::unique_ptr<asio::io_context> own_ioc;
  // Own threads: one io_context per thread (connections are spread over
  // them round-robin and need no strand: no cross-thread hand-offs).
  std::vector<std::unique_ptr<asio::io_context>> workers;
  asio::io_context* ioc = nullptr;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::function<asio::any_io_executor()> next_executor;
  std::vector<std::thread> threads;
  struct Listener {
    std::shared_ptr<tcp::acceptor> acceptor;
    Handler handler;
    uint16_t port = 0;
  };
  std::vector<Listener> explicit_l, transparent_l, http_l, metrics_l;
  std::mutex mu;
  bool started = false;
  bool stopped = false;

  Status Setup(asio::io_context& ioc);
  Result<Listener> Bind(const std::string& addr, const std::string& field, Handler h);
  void StopLocked();
};

namespace {

// "ADDR:PORT" or "[v6]:PORT"; port 0 = ephemeral.
Result<tcp::endpoint> ParseListen(const std::string& text, const std::string& field) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return MakeError(ErrorCode::kInvalidArgument, field + ": expected ADDR:PORT");
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  uint16_t port_number = 0;
  if (!ParsePortFlag(port, &port_number, {.allow_zero = true})) {
    return MakeError(ErrorCode::kInvalidArgument, field + ": invalid port in '" + text + "'");
  }
  error_code ec;
  auto addr = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) return MakeError(ErrorCode::kInvalidArgument, field + ": invalid address in '" + text + "'");
  return tcp::endpoint(addr, port_number);
}

asio::awaitable<void> AcceptLoop(std::shared_ptr<ProxyShared> shared, std::shared_ptr<tcp::acceptor> acceptor,
                                 Handler handler, std::function<asio::any_io_executor()> next_executor,
                                 std::string name) {
  AcceptBackoff backoff;
  asio::steady_timer pause(acceptor->get_executor());
  while (true) {
    error_code ec;
    tcp::socket sock = co_await acceptor->async_accept(next_executor(), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!acceptor->is_open() || ec == asio::error::operation_aborted) co_return;
      const AcceptErrorKind kind = ClassifyAcceptError(ec.value());
      if (kind == AcceptErrorKind::kStop) co_return;
      if (kind == AcceptErrorKind::kRetryNow) continue;
      // EMFILE/ENFILE/ENOBUFS: the listening socket stays readable, so an
      // immediate retry would spin. Wait 10 ms .. 1 s (doubling).
      const auto delay = backoff.Next();
      LogLimited(spdlog::level::warn, "secrets proxy accept " + name, ec.message(),
                 "secrets proxy: accept on the " + name + " listener failed: " + ec.message() + "; retrying in " +
                     std::to_string(delay.count()) + " ms");
      pause.expires_after(delay);
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!acceptor->is_open()) co_return;
      continue;
    }
    backoff.Reset();
    auto ex = sock.get_executor();
    asio::co_spawn(ex, handler(shared, std::move(sock)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("secrets proxy: connection ended by an unexpected exception: {}", ex.what());
      }
    });
  }
}

}  // namespace

Result<Proxy::Impl::Listener> Proxy::Impl::Bind(const std::string& addr, const std::string& field, Handler h) {
  auto ep = ParseListen(addr, field);
  if (!ep) return ep.error();
  auto acc = std::make_shared<tcp::acceptor>(*ioc);
  error_code ec;
  acc->open(ep->protocol(), ec);
  if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc->bind(*ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return MakeError(ErrorCode::kUnavailable, field + ": cannot listen on " + addr + ": " + ec.message());
  Listener l;
  l.port = acc->local_endpoint().port();
  l.acceptor = std::move(acc);
  l.handler = h;
  return l;
}

Status Proxy::Impl::Setup(asio::io_context& io) {
  ioc = &io;
  // OpenSSL writes to the sockets itself: a peer that vanished must give
  // EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  ProxyShared& s = *shared;
  const ProxyConfig& c = s.config;
  if (c.state_dir.empty()) return MakeError(ErrorCode::kInvalidArgument, "state-dir: required (the CA lives there)");
  std::vector<Cidr> allow;
  for (const auto& text : c.allow_private) {
    auto cidr = Cidr::Parse(text);
    if (!cidr) return cidr.error();
    allow.push_back(*cidr);
  }
  s.address_policy = AddressPolicy(std::move(allow));
  for (const auto& text : c.forbidden_endpoints) {
    auto doors = ParseOwnDoors(text, "forbidden-endpoints");
    if (!doors) return doors.error();
    for (const auto& d : *doors) s.address_policy.AddOwnDoor(d);
  }
  for (const auto& [name, value] : c.resolve) {
    ResolveOverride o;
    std::string addr = value;
    if (auto colon = value.rfind(':'); colon != std::string::npos && value.find(':') == colon) {
      addr = value.substr(0, colon);
      const std::string port = value.substr(colon + 1);
      uint16_t port_number = 0;
      if (!ParsePortFlag(port, &port_number)) {
        return MakeError(ErrorCode::kInvalidArgument, "resolve: invalid port for " + name);
      }
      o.port = port_number;
    }
    if (addr.size() >= 2 && addr.front() == '[') addr = addr.substr(1, addr.size() - 2);
    error_code ec;
    o.address = asio::ip::make_address(addr, ec);
    if (ec) return MakeError(ErrorCode::kInvalidArgument, "resolve: invalid address for " + name);
    if (NormalizeHost(name).empty()) return MakeError(ErrorCode::kInvalidArgument, "resolve: empty name");
    s.resolve[NormalizeHost(name)] = o;
  }
  auto ca = CertificateAuthority::LoadOrCreate(c.state_dir, c.limits.leaf_cache_capacity);
  if (!ca) return ca.error();
  s.ca = std::move(*ca);
  s.audit = std::make_unique<AuditLog>(c.audit_log, c.audit_log_max_bytes, c.audit_log_keep);
  if (!s.audit->ok()) return MakeError(ErrorCode::kInvalidArgument, "audit-log: cannot open " + c.audit_log);
  // A sandbox causes a blocked line per request it sends: rate-limit them
  // per sandbox and reason (forwarded requests are always audited).
  s.audit->LimitBlockedRecords(50, std::chrono::seconds(10));

  s.upstream_tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* up = s.upstream_tls->native_handle();
  SSL_CTX_set_min_proto_version(up, TLS1_2_VERSION);
  SSL_CTX_set_read_ahead(up, 1);  // buffers: see certificate_authority.cpp
  SSL_CTX_set_options(up, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(up, kAlpn, sizeof(kAlpn));
  error_code ec;
  s.upstream_tls->set_default_verify_paths(ec);
  if (!c.upstream_ca_file.empty()) {
    s.upstream_tls->load_verify_file(c.upstream_ca_file, ec);
    if (ec) return MakeError(ErrorCode::kInvalidArgument, "upstream-ca: cannot load " + c.upstream_ca_file);
  }
  s.upstream_tls->set_verify_mode(asio::ssl::verify_peer);
  s.admission->metrics = s.metrics.get();
  s.dialer = std::make_unique<NetworkDialer>(c.limits, s.resolve, s.address_policy, up, *s.metrics);
  s.signing->limits = &c.limits;
  s.signing->dialer = s.dialer.get();
  s.signing->sessions = s.sessions.get();
  s.signing->oauth = s.oauth.get();
  s.oauth->SetCoordinator(c.oauth_coordinator);

  for (size_t i = 0; i < c.listen.size(); ++i) {
    auto l = Bind(c.listen[i], "listen", &HandleExplicit);
    if (!l) return l.error();
    explicit_l.push_back(*l);
  }
  for (size_t i = 0; i < c.transparent_listen.size(); ++i) {
    auto l = Bind(c.transparent_listen[i], "transparent-listen", &HandleTransparentTls);
    if (!l) return l.error();
    transparent_l.push_back(*l);
  }
  for (size_t i = 0; i < c.transparent_http_listen.size(); ++i) {
    auto l = Bind(c.transparent_http_listen[i], "transparent-http-listen", &HandleTransparentHttp);
    if (!l) return l.error();
    http_l.push_back(*l);
  }
  if (!c.metrics_listen.empty()) {
    auto l = Bind(c.metrics_listen, "metrics-listen", &HandleMetrics);
    if (!l) return l.error();
    metrics_l.push_back(*l);
  }
  // Our own listeners are doors no upstream connection may reach.
  for (auto* group : {&explicit_l, &transparent_l, &http_l, &metrics_l}) {
    for (auto& l : *group) {
      error_code lec;
      const auto ep = l.acceptor->local_endpoint(lec);
      if (!lec) s.address_policy.AddOwnDoor({ep.address(), ep.port()});
    }
  }
  const std::pair<std::vector<Listener>*, const char*> groups[] = {
      {&explicit_l, "explicit"}, {&transparent_l, "transparent TLS"}, {&http_l, "transparent HTTP"},
      {&metrics_l, "metrics"}};
  for (auto& [group, name] : groups) {
    for (auto& l : *group) {
      asio::co_spawn(*ioc, AcceptLoop(shared, l.acceptor, l.handler, next_executor, name), [](std::exception_ptr) {});
    }
  }
  return {};
}

Proxy::Proxy(ProxyConfig config, std::shared_ptr<SessionRegistry> sessions) : impl_(std::make_shared<Impl>()) {
  impl_->shared->config = std::move(config);
  impl_->shared->sessions = std::move(sessions);
}

Proxy::~Proxy() { Stop(); }

Status Proxy::Start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->started) return MakeError(ErrorCode::kFailedPrecondition, "proxy: already started");
  const int n = std::max(1, impl_->shared->config.threads);
  // Each io_context is run by exactly one thread (hint 1: no cross-thread
  // wake-ups inside Asio; posting from other threads stays safe).
  impl_->own_ioc = std::make_unique<asio::io_context>(1);
  std::vector<asio::io_context*> all{impl_->own_ioc.get()};
  for (int i = 1; i < n; ++i) {
    impl_->workers.push_back(std::make_unique<asio::io_context>(1));
    all.push_back(impl_->workers.back().get());
  }
  auto counter = std::make_shared<std::atomic<size_t>>(0);
  impl_->next_executor = [all, counter]() -> asio::any_io_executor {
    return all[counter->fetch_add(1) % all.size()]->get_executor();
  };
  auto st = impl_->Setup(*impl_->own_ioc);
  if (!st) return st;
  impl_->started = true;
  for (auto* io : all) {
    impl_->work.emplace_back(io->get_executor());
    impl_->threads.emplace_back([io] { io->run(); });
  }
  return {};
}

Status Proxy::Start(asio::io_context& ioc) {
  std::lock_guard lock(impl_->mu);
  if (impl_->started) return MakeError(ErrorCode::kFailedPrecondition, "proxy: already started");
  impl_->next_executor = [&ioc]() -> asio::any_io_executor { return asio::make_strand(ioc); };
  auto st = impl_->Setup(ioc);
  if (!st) return st;
  impl_->started = true;
  return {};
}

void Proxy::Impl::StopLocked() {
  if (!started || stopped) return;
  stopped = true;
  std::vector<std::shared_ptr<tcp::acceptor>> accs;
  for (auto* group : {&explicit_l, &transparent_l, &http_l, &metrics_l}) {
    for (auto& l : *group) accs.push_back(l.acceptor);
  }
  asio::post(*ioc, [accs] {
    for (auto& a : accs) {
      error_code ec;
      a->close(ec);
    }
  });
  {
    std::lock_guard lock(shared->live_mu);
    shared->stopping = true;
    for (auto& weak : shared->live) {
      if (auto s = weak.lock()) asio::post(s->get_executor(), [s] { s->Close(); });
    }
  }
  for (auto* group : {&explicit_l, &transparent_l, &http_l, &metrics_l}) group->clear();
  if (own_ioc) {
    // Let connections end on their closed sockets; force the loop to stop
    // if some operation does not finish within a bounded time.
    work.clear();
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::thread watchdog([&] {
      std::unique_lock l(m);
      if (!cv.wait_for(l, std::chrono::seconds(3), [&] { return done; })) {
        own_ioc->stop();
        for (auto& w : workers) w->stop();
      }
    });
    for (auto& t : threads) t.join();
    threads.clear();
    {
      std::lock_guard l(m);
      done = true;
    }
    cv.notify_all();
    watchdog.join();
    accs.clear();     // before the io_context they belong to
    workers.clear();  // destroys any still-suspended connection coroutine
    own_ioc.reset();
  }
}

void Proxy::Stop() {
  std::lock_guard lock(impl_->mu);
  impl_->StopLocked();
}

std::filesystem::path Proxy::ca_cert_path() const {
  return impl_->shared->ca ? impl_->shared->ca->cert_path() : impl_->shared->config.state_dir / "ca.crt";
}

namespace {
std::vector<uint16_t> Ports(const std::vector<Proxy::Impl::Listener>& ls) {
  std::vector<uint16_t> out;
  for (const auto& l : ls) out.push_back(l.port);
  return out;
}
}  // namespace

std::vector<uint16_t> Proxy::listen_ports() const { return Ports(impl_->explicit_l); }
std::vector<uint16_t> Proxy::transparent_ports() const { return Ports(impl_->transparent_l); }
std::vector<uint16_t> Proxy::transparent_http_ports() const { return Ports(impl_->http_l); }
Status Proxy::ForbidEndpoint(const std::string& addr_port) {
  auto doors = ParseOwnDoors(addr_port, "forbidden-endpoints");
  if (!doors) return doors.error();
  for (const auto& d : *doors) impl_->shared->address_policy.AddOwnDoor(d);
  return {};
}

uint16_t Proxy::metrics_port() const { return impl_->metrics_l.empty() ? 0 : impl_->metrics_l[0].port; }

std::string Proxy::MetricsText() const {
  const auto& s = *impl_->shared;
  return s.metrics->Text(s.ca ? s.ca->leaves_generated() : 0) + (s.audit ? s.audit->MetricsText() : "") +
         AdmissionMetrics(*s.admission);
}

}  // namespace osb::secretsproxy
