#include "secretsproxy/listeners.h"

#include <openssl/ssl.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "secretsproxy/exchange.h"
#include "secretsproxy/host_rules.h"
#include "secretsproxy/sni_parser.h"

namespace osb::secretsproxy {
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

// Counts a live client connection (metrics) and untracks it at the end.
class ConnectionScope {
 public:
  ConnectionScope(std::shared_ptr<ProxyShared> shared) : shared_(std::move(shared)) {
    shared_->audit->connections_total++;
    shared_->audit->connections_active++;
  }
  ~ConnectionScope() {
    shared_->audit->connections_active--;
    for (auto& s : streams_) shared_->Untrack(s);
  }
  void Track(std::shared_ptr<ByteStream> s) {
    shared_->Track(s);
    streams_.push_back(std::move(s));
  }

 private:
  std::shared_ptr<ProxyShared> shared_;
  std::vector<std::shared_ptr<ByteStream>> streams_;
};

// Holds one of the session's connection slots.
class SessionSlot {
 public:
  SessionSlot(std::shared_ptr<const SessionSnapshot> s, size_t cap) : s_(std::move(s)) {
    ok_ = static_cast<size_t>(++s_->connections()) <= cap;
  }
  ~SessionSlot() { --s_->connections(); }
  bool ok() const { return ok_; }

 private:
  std::shared_ptr<const SessionSnapshot> s_;
  bool ok_ = false;
};

std::string SourceOf(const tcp::socket& sock) {
  error_code ec;
  auto ep = sock.remote_endpoint(ec);
  if (ec) return "";
  return NormalizeSourceIp(ep.address().to_string());
}

void AuditBlocked(ProxyShared& shared, const std::string& source, const std::string& sandbox,
                  const std::string& host, const std::string& method, int status, std::string reason) {
  AuditRecord rec;
  rec.source = source;
  rec.sandbox = sandbox;
  rec.host = host;
  rec.method = method;
  rec.status = status;
  rec.reason = std::move(reason);
  shared.audit->Write(rec);
}

asio::awaitable<void> Answer(ProxyShared& shared, ByteStream& s, int status, std::string_view reason) {
  const std::string resp = ErrorResponse(status, reason, true);
  error_code ec;
  co_await s.WriteAll(resp, shared.config.limits.idle_timeout, ec);
  shared.audit->bytes_down += resp.size();
  co_await s.GracefulClose();
}

// TLS towards the client with a leaf for target, then the HTTP loop.
asio::awaitable<void> ServeTls(std::shared_ptr<ProxyShared> shared, ConnectionScope& scope, tcp::socket sock,
                               Target target, std::string source, std::string sandbox, bool check_sni) {
  auto ctx = shared->ca->ServerContextFor(target.host);
  if (!ctx) {
    AuditBlocked(*shared, source, sandbox, target.host, "", 0, "leaf certificate unavailable");
    co_return;
  }
  auto tls = std::make_shared<TlsStream>(std::move(sock), (*ctx)->native_handle(), TlsStream::Role::kServer);
  scope.Track(tls);
  error_code ec;
  co_await tls->Handshake(shared->config.limits.handshake_timeout, ec);
  if (ec) {
    shared->audit->tls_handshake_failures++;
    AuditBlocked(*shared, source, sandbox, target.host, "", 0, "client TLS handshake failed");
    tls->Close();
    co_return;
  }
  bool mismatch = false;
  if (check_sni) {
    const char* sni = SSL_get_servername(tls->native(), TLSEXT_NAMETYPE_host_name);
    mismatch = sni != nullptr && NormalizeHost(sni) != target.host;
  }
  ExchangeOptions opt;
  opt.mode = ExchangeMode::kTls;
  opt.fixed_target = target;
  opt.source_ip = source;
  opt.sni_mismatch = mismatch;
  co_await ServeHttp(shared, tls, std::move(opt));
}

struct TimerFlags {
  bool fired = false;
  bool done = false;
};

// Waits until the socket is readable or the deadline passes.
asio::awaitable<bool> WaitReadable(tcp::socket& sock, Clock::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  timer.expires_at(deadline);
  auto flags = std::make_shared<TimerFlags>();
  timer.async_wait([flags, &sock](const error_code& e) {
    if (e || flags->done) return;
    flags->fired = true;
    error_code ignored;
    sock.cancel(ignored);
  });
  error_code ec;
  co_await sock.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
  flags->done = true;
  timer.cancel();
  co_return !ec && !flags->fired;
}

}  // namespace

asio::awaitable<void> HandleExplicit(std::shared_ptr<ProxyShared> shared, tcp::socket sock) {
  ConnectionScope scope(shared);
  const std::string source = SourceOf(sock);
  error_code ignored;
  sock.set_option(tcp::no_delay(true), ignored);
  const auto& limits = shared->config.limits;
  auto client = std::make_shared<PlainStream>(std::move(sock));
  scope.Track(client);

  std::string buf, reason;
  RequestHead head;
  const HeadRead hr = co_await ReadRequestHead(*client, buf, &head, limits, limits.header_timeout, &reason, false);
  if (hr == HeadRead::kBad || hr == HeadRead::kTooLarge) {
    const int status = hr == HeadRead::kBad ? 400 : 431;
    AuditBlocked(*shared, source, "", "", "", status, reason);
    co_await Answer(*shared, *client, status, reason);
    co_return;
  }
  if (hr != HeadRead::kOk) co_return;
  auto session = shared->sessions->Lookup(source);
  if (!session) {
    AuditBlocked(*shared, source, "", "", head.method, 403, "no sandbox session for this source address");
    co_await Answer(*shared, *client, 403, "no sandbox session for this source address");
    co_return;
  }
  SessionSlot slot(session, limits.max_connections_per_session);
  if (!slot.ok()) {
    AuditBlocked(*shared, source, session->sandbox_id(), "", head.method, 503, "too many connections");
    co_await Answer(*shared, *client, 503, "too many connections for this sandbox");
    co_return;
  }
  if (head.method != "CONNECT") {
    ExchangeOptions opt;
    opt.mode = ExchangeMode::kExplicitPlain;
    opt.initial_bytes = std::move(buf);
    opt.source_ip = source;
    co_await ServeHttp(shared, client, std::move(opt));
    co_return;
  }
  auto target = ParseAuthority(head.target, 0);
  const ParseOutcome parsed = ParseRequestHead(buf, HeadLimits{limits.max_line_bytes, limits.max_header_bytes,
                                                               limits.max_header_fields},
                                               &head);
  buf.erase(0, parsed.consumed);
  std::string why;
  int status = 0;
  if (!target || target->port == 0) {
    status = 400, why = "CONNECT needs host:port";
  } else if (!buf.empty()) {
    status = 400, why = "data sent before the tunnel was established";
  } else if (!session->EgressAllowed(target->host, target->port)) {
    status = 403, why = "host is not on the sandbox's egress allowlist";
  }
  if (status != 0) {
    AuditBlocked(*shared, source, session->sandbox_id(), target ? target->host : "", "CONNECT", status, why);
    co_await Answer(*shared, *client, status, why);
    co_return;
  }
  error_code ec;
  co_await client->WriteAll("HTTP/1.1 200 Connection Established\r\n\r\n", limits.idle_timeout, ec);
  if (ec) co_return;
  co_await ServeTls(shared, scope, std::move(client->socket()), *target, source, session->sandbox_id(), true);
}

asio::awaitable<void> HandleTransparentTls(std::shared_ptr<ProxyShared> shared, tcp::socket sock) {
  ConnectionScope scope(shared);
  const std::string source = SourceOf(sock);
  error_code ignored;
  sock.set_option(tcp::no_delay(true), ignored);
  const auto& limits = shared->config.limits;
  auto session = shared->sessions->Lookup(source);
  if (!session) {
    AuditBlocked(*shared, source, "", "", "", 0, "no sandbox session for this source address");
    co_return;
  }
  SessionSlot slot(session, limits.max_connections_per_session);
  if (!slot.ok()) {
    AuditBlocked(*shared, source, session->sandbox_id(), "", "", 0, "too many connections");
    co_return;
  }
  // Peek (do not consume) until the ClientHello's SNI is readable.
  const auto deadline = Clock::now() + limits.handshake_timeout;
  std::string peek(32 * 1024, '\0');
  std::string host;
  size_t last = 0;
  while (true) {
    const bool readable = co_await WaitReadable(sock, deadline);
    if (!readable) co_return;
    error_code ec;
    const size_t n = sock.receive(asio::buffer(peek), tcp::socket::message_peek, ec);
    if (ec || n == 0) co_return;
    const SniResult r = ParseClientHelloSni(std::string_view(peek.data(), n), &host);
    if (r == SniResult::kFound) break;
    if (r != SniResult::kNeedMore || n == peek.size()) {
      AuditBlocked(*shared, source, session->sandbox_id(), "", "", 0,
                   r == SniResult::kNoSni ? "TLS ClientHello without server name" : "not a TLS ClientHello");
      co_return;
    }
    if (n == last) {  // the rest of the hello has not arrived yet
      asio::steady_timer pause(co_await asio::this_coro::executor);
      pause.expires_after(std::chrono::milliseconds(5));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (Clock::now() > deadline) co_return;
    }
    last = n;
  }
  if (!session->EgressAllowed(host, shared->config.transparent_tls_port)) {
    AuditBlocked(*shared, source, session->sandbox_id(), host, "", 0, "host is not on the sandbox's egress allowlist");
    co_return;
  }
  // NOTE: no braced temporaries inside a co_await expression — GCC 12
  // destroys them twice. Build arguments as named locals first.
  Target target;
  target.host = host;
  target.port = shared->config.transparent_tls_port;
  std::string sandbox = session->sandbox_id();
  co_await ServeTls(shared, scope, std::move(sock), std::move(target), source, std::move(sandbox), false);
}

asio::awaitable<void> HandleTransparentHttp(std::shared_ptr<ProxyShared> shared, tcp::socket sock) {
  ConnectionScope scope(shared);
  const std::string source = SourceOf(sock);
  auto client = std::make_shared<PlainStream>(std::move(sock));
  scope.Track(client);
  auto session = shared->sessions->Lookup(source);
  if (!session) {
    AuditBlocked(*shared, source, "", "", "", 403, "no sandbox session for this source address");
    co_await Answer(*shared, *client, 403, "no sandbox session for this source address");
    co_return;
  }
  SessionSlot slot(session, shared->config.limits.max_connections_per_session);
  if (!slot.ok()) {
    co_await Answer(*shared, *client, 503, "too many connections for this sandbox");
    co_return;
  }
  ExchangeOptions opt;
  opt.mode = ExchangeMode::kTransparentPlain;
  opt.source_ip = source;
  co_await ServeHttp(shared, client, std::move(opt));
}

asio::awaitable<void> HandleMetrics(std::shared_ptr<ProxyShared> shared, tcp::socket sock) {
  auto client = std::make_shared<PlainStream>(std::move(sock));
  std::string buf, reason;
  RequestHead head;
  const HeadRead hr =
      co_await ReadRequestHead(*client, buf, &head, shared->config.limits, shared->config.limits.header_timeout,
                               &reason);
  if (hr != HeadRead::kOk) co_return;
  const std::string body = shared->audit->Metrics(shared->ca->leaves_generated());
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  error_code ec;
  co_await client->WriteAll(resp, shared->config.limits.idle_timeout, ec);
  co_await client->GracefulClose();
}

}  // namespace osb::secretsproxy
