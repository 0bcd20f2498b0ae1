// HttpServer: HTTP/1.1 over Boost.Beast, one coroutine per connection.
//
// * keep-alive; per-read timeouts (idle connections and slow senders are
//   closed); request bodies above body_limit → 413 JSON; headers above
//   header_limit → 431; malformed requests → 400; `Expect: 100-continue`
//   honoured.
// * Handlers run on a separate thread pool, so blocking database calls never
//   stall accepting or reading other connections.
// * A handler whose work lasts long (exec) returns Response::deferred: the
//   handler thread is released at once and the response is written when the
//   work delivers it (from any thread). Wait() also waits for those.
// * At most max_connections open connections: beyond that a new connection
//   is closed at once (plain HTTP: after an immediate 503 JSON with
//   Retry-After: 1; HTTPS: without an answer, since plaintext bytes would
//   only be a handshake error), so a flood of idle connections cannot
//   exhaust file descriptors or memory.
// * Stop() is graceful: stop accepting, let in-flight requests finish (their
//   response says Connection: close), close idle connections, and force-close
//   whatever is left after shutdown_grace.
// * HTTPS when tls_cert_file/tls_key_file are set (TLS 1.2+, see
//   tls_server_context.h): every connection handshakes first (within
//   io_timeout); a client that does not speak TLS gets no HTTP response.
// * Access log: one line per request (method, path, status, duration). Bodies
//   and headers are never logged. A connection's read buffer is zeroed after
//   each request (it held the API key and any secret value in the body).
// Thread safety: Start/Stop/Wait may be called from any thread; Stop is
// idempotent. The Router must not be modified after Start.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "api/router.h"
#include "common/result.h"

namespace osb::api {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0 = pick a free port (see port())
  size_t body_limit = 1024 * 1024;
  size_t header_limit = 16 * 1024;
  std::chrono::seconds idle_timeout{60};   // waiting for the next request
  std::chrono::seconds io_timeout{30};     // reading one request / writing one response
  std::chrono::seconds shutdown_grace{10};
  size_t max_connections = 1024;
  unsigned io_threads = 2;
  unsigned handler_threads = 8;
  // Both set: serve HTTPS only. Both empty: plain HTTP.
  std::string tls_cert_file;  // PEM chain, leaf first
  std::string tls_key_file;   // PEM private key
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, std::shared_ptr<const Router> router);
  ~HttpServer();  // Stop() + Wait()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on background threads. kInvalidArgument for a
  // bad host or an unusable TLS certificate/key, kUnavailable if the address cannot be bound.
  Status Start();
  uint16_t port() const;
  void Stop();
  // Blocks until the server has stopped and all its threads have exited.
  void Wait();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Splits "HOST:PORT" (IPv6 as "[::1]:8080"). kInvalidArgument naming `field`.
Result<std::pair<std::string, uint16_t>> ParseListenAddress(const std::string& field,
                                                            const std::string& value);

}  // namespace osb::api
