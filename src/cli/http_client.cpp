#include "cli/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>
#include <optional>

namespace osb::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

struct Outcome {
  std::optional<HttpResponse> response;
  std::optional<Error> error;
};

Error NetError(const ApiUrl& base, std::string_view what, const beast::error_code& ec) {
  std::string cause = ec == beast::error::timeout ? std::string("timed out") : ec.message();
  return MakeError(ErrorCode::kUnavailable,
                   "cannot reach " + base.ToString() + ": " + std::string(what) + ": " + cause);
}

http::request<http::string_body> BuildRequest(const ApiUrl& base, const HttpRequest& req) {
  http::request<http::string_body> out;
  out.method_string(req.method);
  out.target(base.base_path + req.target);
  out.version(11);
  bool default_port = (base.tls && base.port == "443") || (!base.tls && base.port == "80");
  std::string host = base.host.find(':') != std::string::npos ? "[" + base.host + "]" : base.host;
  out.set(http::field::host, default_port ? host : host + ":" + base.port);
  out.set(http::field::user_agent, "oc/" OSB_VERSION);
  out.set(http::field::accept, "application/json");
  out.set(http::field::connection, "close");
  for (const auto& [name, value] : req.headers) out.set(name, value);
  if (!req.body.empty()) {
    out.set(http::field::content_type, "application/json");
    out.body() = req.body;
  }
  out.prepare_payload();
  return out;
}

// Runs the exchange on `stream` (tcp_stream or ssl_stream<tcp_stream>).
template <typename Stream>
asio::awaitable<void> Exchange(Stream& stream, const ApiUrl& base, const HttpRequest& req,
                               Outcome& outcome) {
  beast::error_code ec;
  auto request = BuildRequest(base, req);
  co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    outcome.error = NetError(base, "sending the request", ec);
    co_return;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(HttpClient::kMaxResponseBytes);
  parser.header_limit(64 * 1024);
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec == http::error::body_limit) {
    outcome.error = MakeError(ErrorCode::kTooLarge, "the server's response is larger than 64 MiB");
    co_return;
  }
  if (ec) {
    outcome.error = NetError(base, "reading the response", ec);
    co_return;
  }
  auto& res = parser.get();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  out.reason = std::string(res.reason());
  out.body = std::move(res.body());
  outcome.response = std::move(out);
}

asio::awaitable<void> Run(const ApiUrl& base, const HttpRequest& req, asio::ssl::context* tls,
                          Outcome& outcome) {
  auto executor = co_await asio::this_coro::executor;
  beast::error_code ec;
  tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(base.host, base.port,
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    outcome.error = NetError(base, "resolving " + base.host, ec);
    co_return;
  }
  beast::tcp_stream tcp_stream(executor);
  tcp_stream.expires_after(req.timeout);
  co_await tcp_stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    outcome.error = NetError(base, "connecting", ec);
    co_return;
  }
  if (tls == nullptr) {
    co_await Exchange(tcp_stream, base, req, outcome);
    beast::error_code ignored;
    tcp_stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }

  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls);
  SSL* ssl = stream.native_handle();
  boost::system::error_code addr_ec;
  (void)asio::ip::make_address(base.host, addr_ec);
  if (addr_ec) {
    // SNI and host name verification for a DNS name.
    SSL_set_tlsext_host_name(ssl, base.host.c_str());
    SSL_set1_host(ssl, base.host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), base.host.c_str());
  }
  co_await stream.async_handshake(asio::ssl::stream_base::client,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    std::string what = "TLS handshake";
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      what += " (certificate verification failed: " +
              std::string(X509_verify_cert_error_string(verify)) +
              "; set SSL_CERT_FILE to a CA bundle that signs the server's certificate)";
    }
    outcome.error = NetError(base, what, ec);
    co_return;
  }
  co_await Exchange(stream, base, req, outcome);
  // The server closes; a proper TLS shutdown is not worth a timeout here.
}

}  // namespace

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) const {
  asio::io_context io;
  std::optional<asio::ssl::context> tls;
  if (base_.tls) {
    tls.emplace(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
    tls->set_default_verify_paths();
    tls->set_verify_mode(asio::ssl::verify_peer);
  }
  Outcome outcome;
  std::exception_ptr failure;
  asio::co_spawn(io, Run(base_, request, tls ? &*tls : nullptr, outcome),
                 [&failure](std::exception_ptr e) { failure = e; });
  // The timeout covers the whole exchange, including name resolution.
  io.run_for(request.timeout + std::chrono::seconds(1));
  if (!io.stopped()) {
    io.stop();
    return MakeError(ErrorCode::kUnavailable, "cannot reach " + base_.ToString() + ": timed out");
  }
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      return MakeError(ErrorCode::kUnavailable,
                       "cannot reach " + base_.ToString() + ": " + e.what());
    }
  }
  if (outcome.error) return *outcome.error;
  if (!outcome.response) return MakeError(ErrorCode::kInternal, "no response");
  return std::move(*outcome.response);
}

}  // namespace osb::cli
