#include "secretsproxy/listeners.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <boost/asio/redirect_error.hpp>
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

// A partial ClientHello is buffered up to one full TLS record and its header;
// a hello that does not fit is refused.
constexpr size_t kMaxClientHelloBytes = 16 * 1024 + 5;

// Counts a live client connection (metrics), untracks it at the end, and
// lets the memory trimmer see the count fall after a burst.
class ConnectionScope {
 public:
  ConnectionScope(std::shared_ptr<ProxyShared> shared) : shared_(std::move(shared)) {
    shared_->metrics->connections_total++;
    shared_->admission->trimmer.Note(++shared_->metrics->connections_active);
  }
  ~ConnectionScope() {
    shared_->admission->trimmer.Note(--shared_->metrics->connections_active);
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

std::string SourceOf(const tcp::socket& sock) {
  error_code ec;
  auto ep = sock.remote_endpoint(ec);
  if (ec) return "";
  return NormalizeSourceIp(ep.address().to_string());
}

void AuditBlocked(ProxyShared& shared, const std::string& source, const std::string& sandbox,
                  const std::string& host, const std::string& method, int status, const std::string& reason) {
  AuditRefusal(*shared.admission, *shared.audit, source, sandbox, host, method, status, reason);
}

asio::awaitable<void> Answer(ProxyShared& shared, ByteStream& s, int status, std::string_view reason) {
  const std::string resp = ErrorResponse(status, reason, true);
  error_code ec;
  co_await s.WriteAll(resp, shared.config.limits.idle_timeout, ec);
  shared.metrics->bytes_down += resp.size();
  co_await s.GracefulClose();
}

// Refused at accept: a fixed 503 where HTTP is spoken (written without
// waiting: a fresh socket's send buffer is empty), then closed at once.
void CloseNow(tcp::socket& sock, bool http) {
  error_code ec;
  if (http) {
    static const std::string kResp = ErrorResponse(503, "too many connections for this sandbox", true);
    sock.non_blocking(true, ec);
    sock.write_some(asio::buffer(kResp), ec);
  }
  sock.close(ec);
}

Millis Until(Clock::time_point deadline) {
  return std::max(Millis{1}, std::chrono::duration_cast<Millis>(deadline - Clock::now()));
}

// Reads until `buf` holds a complete request head (not consumed: the caller
// hands buf on), the head is bad or too large, or `deadline` passes. One
// read waits at most until the deadline: bytes trickling in do not extend it.
asio::awaitable<HeadRead> ReadHeadBy(ByteStream& s, std::string& buf, RequestHead* head, const ProxyLimits& limits,
                                     Clock::time_point deadline, std::string* reason) {
  const HeadLimits hl{limits.max_line_bytes, limits.max_header_bytes, limits.max_header_fields};
  while (true) {
    if (!buf.empty()) {
      const ParseOutcome r = ParseRequestHead(buf, hl, head);
      if (r.status == ParseStatus::kComplete) co_return HeadRead::kOk;
      if (r.status == ParseStatus::kBad || r.status == ParseStatus::kTooLarge) {
        *reason = r.reason;
        co_return r.status == ParseStatus::kBad ? HeadRead::kBad : HeadRead::kTooLarge;
      }
    }
    if (Clock::now() >= deadline) co_return HeadRead::kTimeout;
    const size_t have = buf.size();
    buf.resize(have + (have == 0 ? 2048 : 16 * 1024));
    error_code ec;
    const size_t n = co_await s.ReadSome(buf.data() + have, buf.size() - have, Until(deadline), ec);
    buf.resize(have + n);
    if (n == 0) co_return ec == asio::error::timed_out ? HeadRead::kTimeout : HeadRead::kEof;
  }
}

// TLS towards the client with a leaf for target (initial = bytes of the
// ClientHello already read), then the first request head by its deadline,
// then the HTTP loop.
asio::awaitable<void> ServeTls(std::shared_ptr<ProxyShared> shared, ConnectionScope& scope, Admitted& admitted,
                               tcp::socket sock, Target target, std::string source, bool check_sni,
                               Clock::time_point handshake_deadline, std::string initial) {
  const std::string& sandbox = admitted.sandbox_id();
  auto ctx = shared->ca->ServerContextFor(target.host);
  if (!ctx) {
    AuditBlocked(*shared, source, sandbox, target.host, "", 0, "leaf certificate unavailable");
    co_return;
  }
  auto tls = std::make_shared<TlsStream>(std::move(sock), (*ctx)->native_handle(), TlsStream::Role::kServer,
                                         std::move(initial));
  scope.Track(tls);
  error_code ec;
  co_await tls->Handshake(Until(handshake_deadline), ec);
  if (ec) {
    shared->metrics->tls_handshake_failures++;
    AuditBlocked(*shared, source, sandbox, target.host, "", 0, "client TLS handshake failed");
    tls->Close();
    co_return;
  }
  bool mismatch = false;
  if (check_sni) {
    const char* sni = SSL_get_servername(tls->native(), TLSEXT_NAMETYPE_host_name);
    mismatch = sni != nullptr && NormalizeHost(sni) != target.host;
  }
  const auto& limits = shared->config.limits;
  std::string buf, reason;
  RequestHead head;
  const HeadRead hr = co_await ReadHeadBy(*tls, buf, &head, limits, Clock::now() + limits.header_timeout, &reason);
  if (hr != HeadRead::kOk && hr != HeadRead::kBad && hr != HeadRead::kTooLarge) {
    tls->Close();
    co_return;
  }
  admitted.Established();  // a bad head is refused (and audited) by ServeHttp
  ExchangeOptions opt;
  opt.mode = ExchangeMode::kTls;
  opt.fixed_target = target;
  opt.source_ip = source;
  opt.sni_mismatch = mismatch;
  opt.initial_bytes = std::move(buf);
  co_await ServeHttp(shared, tls, std::move(opt));
}

// Admission at accept (admission.h). nullopt: refused and already handled
// (closed at once, or 403 answered to an unknown source).
asio::awaitable<std::optional<Admitted>> AdmitOrRefuse(ProxyShared& shared, tcp::socket& sock,
                                                        const std::string& source, bool http) {
  auto r = Admission::Admit(*shared.admission, *shared.sessions, shared.config.limits, *shared.audit,
                            static_cast<int>(sock.native_handle()), source);
  if (r.outcome == Admission::Outcome::kAdmitted) co_return std::move(r.admitted);
  if (r.outcome == Admission::Outcome::kRefused) {
    CloseNow(sock, http);
    co_return std::nullopt;
  }
  AuditBlocked(shared, source, "", "", "", http ? 403 : 0, r.reason);
  if (!http) {
    CloseNow(sock, false);
    co_return std::nullopt;
  }
  auto client = std::make_shared<PlainStream>(std::move(sock));
  shared.Track(client);
  co_await Answer(shared, *client, 403, r.reason);
  shared.Untrack(client);
  co_return std::nullopt;
}

}  // namespace

asio::awaitable<void> HandleExplicit(std::shared_ptr<ProxyShared> shared, tcp::socket sock) {
  ConnectionScope scope(shared);
  const std::string source = SourceOf(sock);
  auto admitted = co_await AdmitOrRefuse(*shared, sock, source, true);
  if (!admitted) co_return;
  const auto& session = admitted->session();
  error_code ignored;
  sock.set_option(tcp::no_delay(true), ignored);
  const auto& limits = shared->config.limits;
  auto client = std::make_shared<PlainStream>(std::move(sock));
  scope.Track(client);

  std::string buf, reason;
  RequestHead head;
  const HeadRead hr =
      co_await ReadHeadBy(*client, buf, &head, limits, admitted->accepted_at() + limits.header_timeout, &reason);
  if (hr == HeadRead::kBad || hr == HeadRead::kTooLarge) {
    const int status = hr == HeadRead::kBad ? 400 : 431;
    AuditBlocked(*shared, source, session->sandbox_id(), "", "", status, reason);
    co_await Answer(*shared, *client, status, reason);
    co_return;
  }
  if (hr != HeadRead::kOk) co_return;
  const auto head_done = Clock::now();
  if (head.method != "CONNECT") {
    admitted->Established();
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
  if (status == 0) {
    // Never open a tunnel the exchange would only refuse: a target the
    // address policy forbids (one of the product's own doors, the host's own
    // addresses, private ranges) gets its 403 now, not after "200".
    const Target probe = *target;
    auto pre = co_await shared->dialer->Precheck(probe);
    if (pre.status != 0) status = pre.status, why = std::move(pre.reason);
  }
  if (status != 0) {
    AuditBlocked(*shared, source, session->sandbox_id(), target ? target->host : "", "CONNECT", status, why);
    co_await Answer(*shared, *client, status, why);
    co_return;
  }
  error_code ec;
  co_await client->WriteAll("HTTP/1.1 200 Connection Established\r\n\r\n", limits.idle_timeout, ec);
  if (ec) co_return;
  std::string no_initial_bytes;
  const auto handshake_deadline = head_done + limits.handshake_timeout;
  co_await ServeTls(shared, scope, *admitted, std::move(client->socket()), *target, source, true,
                    handshake_deadline, std::move(no_initial_bytes));
}

asio::awaitable<void> HandleTransparentTls(std::shared_ptr<ProxyShared> shared, tcp::socket sock) {
  ConnectionScope scope(shared);
  const std::string source = SourceOf(sock);
  auto admitted = co_await AdmitOrRefuse(*shared, sock, source, false);
  if (!admitted) co_return;
  const auto& session = admitted->session();
  error_code ignored;
  sock.set_option(tcp::no_delay(true), ignored);
  const auto& limits = shared->config.limits;
  const auto deadline = admitted->accepted_at() + limits.handshake_timeout;
  auto client = std::make_shared<PlainStream>(std::move(sock));
  scope.Track(client);
  // Read (asynchronously, by the deadline) until the ClientHello's SNI is
  // known; the bytes read go to the TLS layer as its first input.
  std::string hello, host;
  while (true) {
    const size_t have = hello.size();
    if (have == kMaxClientHelloBytes) {
      AuditBlocked(*shared, source, session->sandbox_id(), "", "", 0, "TLS ClientHello too large");
      co_return;
    }
    hello.resize(std::min(kMaxClientHelloBytes, have + (have == 0 ? 2048 : 4096)));
    error_code ec;
    const size_t n = co_await client->ReadSome(hello.data() + have, hello.size() - have, Until(deadline), ec);
    hello.resize(have + n);
    if (n == 0) co_return;  // EOF, reset or the deadline
    const SniResult r = ParseClientHelloSni(hello, &host);
    if (r == SniResult::kFound) break;
    if (r != SniResult::kNeedMore) {
      AuditBlocked(*shared, source, session->sandbox_id(), "", "", 0,
                   r == SniResult::kNoSni ? "TLS ClientHello without server name" : "not a TLS ClientHello");
      co_return;
    }
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
  co_await ServeTls(shared, scope, *admitted, std::move(client->socket()), std::move(target), source, false,
                    deadline, std::move(hello));
}

asio::awaitable<void> HandleTransparentHttp(std::shared_ptr<ProxyShared> shared, tcp::socket sock) {
  ConnectionScope scope(shared);
  const std::string source = SourceOf(sock);
  auto admitted = co_await AdmitOrRefuse(*shared, sock, source, true);
  if (!admitted) co_return;
  const auto& limits = shared->config.limits;
  auto client = std::make_shared<PlainStream>(std::move(sock));
  scope.Track(client);
  std::string buf, reason;
  RequestHead head;
  const HeadRead hr =
      co_await ReadHeadBy(*client, buf, &head, limits, admitted->accepted_at() + limits.header_timeout, &reason);
  if (hr != HeadRead::kOk && hr != HeadRead::kBad && hr != HeadRead::kTooLarge) co_return;
  admitted->Established();  // a bad head is refused (and audited) by ServeHttp
  ExchangeOptions opt;
  opt.mode = ExchangeMode::kTransparentPlain;
  opt.source_ip = source;
  opt.initial_bytes = std::move(buf);
  co_await ServeHttp(shared, client, std::move(opt));
}

asio::awaitable<void> HandleMetrics(std::shared_ptr<ProxyShared> shared, tcp::socket sock) {
  auto client = std::make_shared<PlainStream>(std::move(sock));
  std::string buf, reason;
  RequestHead head;
  const HeadRead hr =
      co_await ReadHeadBy(*client, buf, &head, shared->config.limits,
                          Clock::now() + shared->config.limits.header_timeout, &reason);
  if (hr != HeadRead::kOk) co_return;
  const std::string body = shared->metrics->Text(shared->ca->leaves_generated()) + shared->audit->MetricsText() +
                           AdmissionMetrics(*shared->admission);
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  error_code ec;
  co_await client->WriteAll(resp, shared->config.limits.idle_timeout, ec);
  co_await client->GracefulClose();
}

}  // namespace osb::secretsproxy
