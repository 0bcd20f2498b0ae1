#include "secretsproxy/upstream_connector.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "secretsproxy/host_rules.h"

namespace osb::secretsproxy {
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {
// Shared with a timer handler that may run after the awaited operation
// finished: `done` tells it to touch nothing.
struct TimerFlags {
  bool fired = false;
  bool done = false;
};
}  // namespace

asio::awaitable<UpstreamConnection> NetworkDialer::Resolve(const Target& target, uint16_t* port_out,
                                                           AddressPolicy::Filtered* checked) {
  auto ex = co_await asio::this_coro::executor;
  const auto& limits = limits_;
  std::vector<asio::ip::address> candidates;
  uint16_t port = target.port;
  if (auto it = resolve_.find(target.host); it != resolve_.end()) {
    candidates.push_back(it->second.address);
    if (it->second.port) port = *it->second.port;
  } else if (IsIpLiteral(target.host)) {
    candidates.push_back(asio::ip::make_address(target.host));
  } else if (IsLoopbackName(target.host)) {
    candidates = {asio::ip::address_v4::loopback(), asio::ip::address_v6::loopback()};
  } else {
    tcp::resolver resolver(ex);
    asio::steady_timer timer(ex);
    timer.expires_after(limits.connect_timeout);
    auto flags = std::make_shared<TimerFlags>();
    timer.async_wait([flags, &resolver](const error_code& ec) {
      if (ec || flags->done) return;
      flags->fired = true;
      resolver.cancel();
    });
    error_code ec;
    auto results = co_await resolver.async_resolve(target.host, std::to_string(port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
    flags->done = true;
    timer.cancel();
    if (flags->fired) co_return UpstreamConnection{nullptr, 504, "DNS resolution timed out"};
    if (ec) co_return UpstreamConnection{nullptr, 502, "DNS resolution failed"};
    for (const auto& r : results) candidates.push_back(r.endpoint().address());
  }
  *checked = policy_.Filter(candidates, port);
  *port_out = port;
  if (checked->allowed.empty()) co_return UpstreamConnection{nullptr, 403, std::string(checked->reason)};
  co_return UpstreamConnection{};
}

asio::awaitable<UpstreamConnection> NetworkDialer::Precheck(Target target) {
  uint16_t port = 0;
  AddressPolicy::Filtered checked;
  auto r = co_await Resolve(target, &port, &checked);
  if (r.status != 403) r = UpstreamConnection{};  // DNS trouble: Dial reports it inside the tunnel
  co_return r;
}

asio::awaitable<UpstreamConnection> NetworkDialer::Dial(Target target, bool tls) {
  auto ex = co_await asio::this_coro::executor;
  const auto& limits = limits_;
  uint16_t port = 0;
  AddressPolicy::Filtered checked;
  auto resolved = co_await Resolve(target, &port, &checked);
  if (resolved.status != 0) co_return resolved;
  const std::vector<asio::ip::address>& allowed = checked.allowed;

  tcp::socket sock(ex);
  bool connected = false;
  bool timed_out_any = false;
  for (const auto& addr : allowed) {
    error_code ec;
    sock = tcp::socket(ex);
    asio::steady_timer timer(ex);
    timer.expires_after(limits.connect_timeout);
    auto flags = std::make_shared<TimerFlags>();
    timer.async_wait([flags, &sock](const error_code& e) {
      if (e || flags->done) return;
      flags->fired = true;
      error_code ignored;
      sock.cancel(ignored);
    });
    co_await sock.async_connect(tcp::endpoint(addr, port), asio::redirect_error(asio::use_awaitable, ec));
    flags->done = true;
    timer.cancel();
    timed_out_any |= flags->fired;
    if (!ec && !flags->fired) {
      connected = true;
      break;
    }
  }
  if (!connected) {
    metrics_.upstream_errors++;
    co_return UpstreamConnection{nullptr, timed_out_any ? 504 : 502, "upstream connection failed"};
  }
  error_code ignored;
  sock.set_option(tcp::no_delay(true), ignored);
  if (!tls) co_return UpstreamConnection{std::make_shared<PlainStream>(std::move(sock)), 0, ""};

  auto stream = std::make_shared<TlsStream>(std::move(sock), tls_,
                                           TlsStream::Role::kClient);
  SSL* ssl = stream->native();
  if (IsIpLiteral(target.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), target.host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, target.host.c_str());
    SSL_set1_host(ssl, target.host.c_str());
  }
  error_code ec;
  co_await stream->Handshake(limits.handshake_timeout, ec);
  if (ec) {
    metrics_.upstream_errors++;
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) co_return UpstreamConnection{nullptr, 502, "upstream certificate verification failed"};
    co_return UpstreamConnection{nullptr, ec == asio::error::timed_out ? 504 : 502, "upstream TLS handshake failed"};
  }
  co_return UpstreamConnection{stream, 0, ""};
}

}  // namespace osb::secretsproxy
