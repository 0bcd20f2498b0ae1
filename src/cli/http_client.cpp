#include "cli/http_client.h"

#include "cli/await_one.h"
#include "cli/tls_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
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


// A streamed exchange (HttpRequest::upload_file / download_fd): the body is
// sent from the file and a 2xx response body written to the fd, one piece
// at a time.
template <typename Stream>
Outcome StreamedExchange(asio::io_context& io, Stream& stream, const ApiUrl& base, const HttpRequest& req) {
  Outcome outcome;
  beast::error_code ec;
  HttpRequest head = req;
  head.body.clear();
  auto built = BuildRequest(base, head);
  if (!req.upload_file.empty()) {
    http::request<http::file_body> request{built.method(), built.target(), 11};
    for (const auto& field : built) request.set(field.name_string(), field.value());
    request.body().open(req.upload_file.c_str(), beast::file_mode::scan, ec);
    if (ec) {
      outcome.error = MakeError(ErrorCode::kInvalidArgument, "cannot read " + req.upload_file + ": " + ec.message());
      return outcome;
    }
    request.set(http::field::content_type, req.upload_content_type);
    request.prepare_payload();
    if (req.upload_progress) {
      // Piece by piece, reporting progress (oc template import on a TTY).
      const uint64_t total = request.body().size();
      http::request_serializer<http::file_body> sr{request};
      uint64_t sent = 0;
      while (!ec && !sr.is_done()) {
        size_t n = 0;
        ec = AwaitOne(io, [&](auto handler) {
          http::async_write_some(stream, sr, [&n, handler](beast::error_code e, size_t bytes) mutable {
            n = bytes;
            handler(e, bytes);
          });
        });
        sent += n;
        req.upload_progress(std::min(sent, total), total);
      }
    } else {
      ec = AwaitOne(io, [&](auto handler) { http::async_write(stream, request, handler); });
    }
    // A server that refuses midway (e.g. disk quota) answers before the
    // body is complete: still read its answer.
  } else {
    ec = AwaitOne(io, [&](auto handler) { http::async_write(stream, built, handler); });
    if (ec) {
      outcome.error = NetError(base, "sending the request", ec);
      return outcome;
    }
  }
  const bool send_failed = static_cast<bool>(ec);
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  parser.header_limit(64 * 1024);
  ec = AwaitOne(io, [&](auto handler) { http::async_read_header(stream, buffer, parser, handler); });
  if (ec) {
    outcome.error = NetError(base, send_failed ? "sending the request" : "reading the response", ec);
    return outcome;
  }
  HttpResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  out.reason = std::string(parser.get().reason());
  const bool to_fd = req.download_fd >= 0 && out.status / 100 == 2;
  const uint64_t expected = parser.content_length().value_or(0);
  uint64_t received = 0;
  std::vector<char> piece(256 * 1024);
  while (!parser.is_done()) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    ec = AwaitOne(io, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      outcome.error = NetError(base, "reading the response (incomplete body)", ec);
      return outcome;
    }
    const size_t n = piece.size() - parser.get().body().size;
    if (to_fd) {
      size_t off = 0;
      while (off < n) {
        ssize_t w = ::write(req.download_fd, piece.data() + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          outcome.error = MakeError(ErrorCode::kInternal, std::string("cannot write the download: ") + strerror(errno));
          return outcome;
        }
        off += static_cast<size_t>(w);
      }
      received += n;
      if (req.download_progress) req.download_progress(received, expected);
    } else if (out.body.size() + n <= HttpClient::kMaxResponseBytes) {
      out.body.append(piece.data(), n);
    }
  }
  outcome.response = std::move(out);
  return outcome;
}

// Sends the request and reads the response on `stream` (tcp_stream or
// ssl_stream<tcp_stream>), whose expiry is already set.
template <typename Stream>
Outcome Exchange(asio::io_context& io, Stream& stream, const ApiUrl& base, const HttpRequest& req) {
  if (!req.upload_file.empty() || req.download_fd >= 0) return StreamedExchange(io, stream, base, req);
  Outcome outcome;
  auto request = BuildRequest(base, req);
  beast::error_code ec = AwaitOne(io, [&](auto handler) { http::async_write(stream, request, handler); });
  if (ec) {
    outcome.error = NetError(base, "sending the request", ec);
    return outcome;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(HttpClient::kMaxResponseBytes);
  parser.header_limit(64 * 1024);
  ec = AwaitOne(io, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
  if (ec == http::error::body_limit) {
    outcome.error = MakeError(ErrorCode::kTooLarge, "the server's response is larger than 64 MiB");
    return outcome;
  }
  if (ec) {
    outcome.error = NetError(base, "reading the response", ec);
    return outcome;
  }
  auto& res = parser.get();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  out.reason = std::string(res.reason());
  out.body = std::move(res.body());
  outcome.response = std::move(out);
  return outcome;
}

Outcome Run(asio::io_context& io, const ApiUrl& base, const HttpRequest& req,
            asio::ssl::context* tls) {
  Outcome outcome;
  const auto deadline = std::chrono::steady_clock::now() + req.timeout;

  // Name resolution has no built-in timeout: race it against a timer.
  tcp::resolver resolver(io);
  asio::steady_timer resolve_timer(io, deadline);
  resolve_timer.async_wait([&resolver](beast::error_code ec) {
    if (!ec) resolver.cancel();
  });
  tcp::resolver::results_type endpoints;
  beast::error_code ec = AwaitOne(io, [&](auto handler) {
    resolver.async_resolve(base.host, base.port,
                           [&endpoints, handler](beast::error_code e, tcp::resolver::results_type r) mutable {
                             endpoints = std::move(r);
                             handler(e);
                           });
  });
  resolve_timer.cancel();
  if (ec == asio::error::operation_aborted) ec = beast::error::timeout;
  if (ec) {
    outcome.error = NetError(base, "resolving " + base.host, ec);
    return outcome;
  }

  beast::tcp_stream tcp_stream(io);
  tcp_stream.expires_at(deadline);
  ec = AwaitOne(io, [&](auto handler) { tcp_stream.async_connect(endpoints, handler); });
  if (ec) {
    outcome.error = NetError(base, "connecting", ec);
    return outcome;
  }
  if (tls == nullptr) {
    outcome = Exchange(io, tcp_stream, base, req);
    beast::error_code ignored;
    tcp_stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return outcome;
  }

  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls);
  SSL* ssl = stream.native_handle();
  SetTlsPeerName(ssl, base.host);
  ec = AwaitOne(io, [&](auto handler) { stream.async_handshake(asio::ssl::stream_base::client, handler); });
  if (ec) {
    std::string what = "TLS handshake";
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      what += " (certificate verification failed: " +
              std::string(X509_verify_cert_error_string(verify)) +
              "; pass --ca-file (or set OSB_CA_FILE) to a PEM CA bundle that signs the server's certificate)";
    }
    outcome.error = NetError(base, what, ec);
    return outcome;
  }
  // The server closes the connection; a TLS close_notify exchange is not
  // worth another round trip here.
  return Exchange(io, stream, base, req);
}

}  // namespace

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) const {
  asio::io_context io;
  std::optional<asio::ssl::context> tls;
  if (base_.tls) {
    tls.emplace(asio::ssl::context::tls_client);
    if (auto configured = ConfigureTlsClient(*tls, ca_file_); !configured) return configured.error();
  }
  try {
    Outcome outcome = Run(io, base_, request, tls ? &*tls : nullptr);
    if (outcome.error) return *outcome.error;
    if (!outcome.response) return MakeError(ErrorCode::kInternal, "no response");
    return std::move(*outcome.response);
  } catch (const std::exception& e) {
    // Asio/OpenSSL setup failures (e.g. out of file descriptors).
    return MakeError(ErrorCode::kUnavailable, "cannot reach " + base_.ToString() + ": " + e.what());
  }
}

}  // namespace osb::cli
