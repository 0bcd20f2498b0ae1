#include "api/http_server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <limits>
#include <unordered_map>

#include "api/body_reads.h"
#include "api/byte_channel.h"
#include "api/tls_server_context.h"
#include "api/websocket_session.h"
#include "common/accept_backoff.h"
#include "common/rate_limited_log.h"
#include "common/secure_memory.h"

namespace osb::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {

// One live connection, touched only on its strand (except `id`).
struct Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  // Set (before the first request) when the server speaks HTTPS; then all
  // I/O goes through it and `stream` is only its transport.
  std::optional<asio::ssl::stream<beast::tcp_stream&>> tls;
  bool idle = true;  // waiting for a request's first bytes
};

// Calls op(stream) on the TLS layer when there is one, else on the TCP
// stream: op starts one asynchronous operation and returns its awaitable.
template <class Op>
auto OnStream(Connection& c, Op op) -> decltype(op(c.stream)) {
  if (c.tls) return op(*c.tls);
  return op(c.stream);
}

Request ToRequest(http::request<http::string_body>& msg, const std::string& remote) {
  Request r;
  r.method = std::string(msg.method_string());
  const std::string target(msg.target());
  const auto q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) r.query = target.substr(q + 1);
  for (const auto& field : msg) {
    r.headers[std::string(field.name_string())] = std::string(field.value());
  }
  r.body = std::move(msg.body());
  r.remote = remote;
  return r;
}

http::response<http::string_body> ToMessage(const Response& resp, unsigned version, bool keep_alive) {
  http::response<http::string_body> msg{static_cast<http::status>(resp.status), version};
  msg.set(http::field::server, "osb");
  if (!resp.body.empty() || resp.status != 204) msg.set(http::field::content_type, resp.content_type);
  for (const auto& [k, v] : resp.headers) msg.set(k, v);
  msg.body() = resp.body;
  msg.keep_alive(keep_alive);
  msg.prepare_payload();
  return msg;
}

}  // namespace

// Coroutines and handlers hold a raw Impl*: HttpServer's destructor stops and
// joins everything before Impl goes away.
class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, std::shared_ptr<const Router> router)
      : options_(std::move(options)),
        router_(std::move(router)),
        acceptor_(asio::make_strand(ioc_)),
        control_(asio::make_strand(ioc_)),
        grace_timer_(control_),
        handlers_(std::max(1u, options_.handler_threads)) {}

  Status Start() {
    if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
      auto tls = LoadServerTlsContext(options_.tls_cert_file, options_.tls_key_file);
      if (!tls) return tls.error();
      tls_ = std::move(*tls);
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(options_.host, ec);
    if (ec) return MakeError(ErrorCode::kInvalidArgument, "--listen: '" + options_.host + "' is not an IP address");
    const tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return MakeError(ErrorCode::kUnavailable, "cannot listen on " + options_.host + ":" +
                                                    std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(acceptor_.get_executor(), Accept(this), asio::detached);
    for (unsigned i = 0; i < std::max(1u, options_.io_threads); ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    spdlog::info("http: listening on {}:{} ({})", options_.host, port_, tls_ ? "HTTPS" : "plain HTTP");
    return {};
  }

  uint16_t port() const { return port_; }

  void Stop() {
    if (stopping_.exchange(true)) return;
    spdlog::info("http: shutting down (grace {}s)", options_.shutdown_grace.count());
    Impl* self = this;
    asio::post(acceptor_.get_executor(), [self] {
      boost::system::error_code ec;
      self->acceptor_.close(ec);
    });
    ws_sessions_.CloseAll();
    std::vector<std::shared_ptr<Connection>> live;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, c] : connections_) live.push_back(c);
    }
    for (auto& c : live) {
      // On the connection's strand: only an idle read is cancelled; a
      // request in progress finishes and then closes (stopping_ is set).
      asio::post(c->stream.get_executor(), [c] {
        // error_code overload: the socket may already be closed (a timeout
        // closes it before the coroutine observes the error).
        boost::system::error_code ignored;
        if (c->idle && c->stream.socket().is_open()) c->stream.socket().cancel(ignored);
      });
    }
    asio::post(control_, [self] {
      self->grace_timer_.expires_after(self->options_.shutdown_grace);
      self->grace_timer_.async_wait([self](boost::system::error_code ec) {
        if (!ec) {
          spdlog::warn("http: grace period over; closing remaining connections");
          self->ioc_.stop();
        }
      });
      self->MaybeFinish();
    });
  }

  void Wait() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    handlers_.join();
    // WebSocket handlers (threads, or asynchronous ones still finishing):
    // their sessions are gone with the io threads.
    ws_sessions_.AbortAll();
    ws_sessions_.WaitIdle();
    // A deferred response still to come posts to ioc_: keep it alive.
    std::unique_lock lock(deferred_mu_);
    deferred_cv_.wait(lock, [&] { return deferred_ == 0; });
  }

 private:
  // Waits, without a thread, for a deferred response (Response::deferred)
  // delivered from any thread; resumes on the connection's strand.
  static awaitable<Response> Deferred(Impl* self, std::function<void(Deliver)> start) {
    auto initiate = [self, start = std::move(start)](auto handler) mutable {
      auto h = std::make_shared<decltype(handler)>(std::move(handler));
      {
        std::lock_guard lock(self->deferred_mu_);
        ++self->deferred_;
      }
      auto once = std::make_shared<std::atomic<bool>>(false);
      start([self, h, once](Response r) {
        if (once->exchange(true)) return;
        auto ex = asio::get_associated_executor(*h);
        asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
        std::lock_guard lock(self->deferred_mu_);
        if (--self->deferred_ == 0) self->deferred_cv_.notify_all();
      });
    };
    Response r = co_await asio::async_initiate<decltype(use_awaitable), void(Response)>(std::move(initiate),
                                                                                       use_awaitable);
    co_return r;
  }

  // On control_: once stopping and no connection is left, end the run.
  void MaybeFinish() {
    std::lock_guard lock(mu_);
    if (stopping_ && connections_.empty()) grace_timer_.cancel();
  }

  static awaitable<void> Accept(Impl* self) {
    AcceptBackoff backoff;
    asio::steady_timer pause(self->acceptor_.get_executor());
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await self->acceptor_.async_accept(
          asio::make_strand(self->ioc_), asio::redirect_error(use_awaitable, ec));
      if (self->stopping_ || ec == asio::error::operation_aborted) co_return;
      if (ec) {
        const AcceptErrorKind kind = ClassifyAcceptError(ec.value());
        if (kind == AcceptErrorKind::kStop) co_return;
        if (kind == AcceptErrorKind::kRetryNow) continue;
        // EMFILE/ENFILE: the listener stays readable; retrying at once would
        // spin (and log) without end. Wait 10 ms .. 1 s, doubling.
        const auto delay = backoff.Next();
        LogLimited(spdlog::level::warn, "http accept", ec.message(),
                   "http: accept failed: " + ec.message() + "; retrying in " + std::to_string(delay.count()) +
                       " ms");
        pause.expires_after(delay);
        co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
        if (self->stopping_) co_return;
        continue;
      }
      backoff.Reset();
      bool full = false;
      {
        std::lock_guard lock(self->mu_);
        full = self->connections_.size() >= self->options_.max_connections;
      }
      if (full) {
        // Plaintext bytes on an HTTPS port would only be a handshake error:
        // a TLS client gets a plain close instead.
        if (self->tls_) {
          boost::system::error_code ignored;
          socket.close(ignored);
        } else {
          RefuseBusy(socket);
        }
        if (self->refused_++ % 1000 == 0) {
          spdlog::warn("http: {} connections open (the limit): refusing new ones ({}; {} so far)",
                       self->options_.max_connections,
                       self->tls_ ? "HTTPS: closed without an answer" : "503", self->refused_);
        }
        continue;
      }
      // Streams (WebSocket frames, chunked bodies) write small pieces back to
      // back: with Nagle's algorithm the second waits for the client's
      // delayed ACK, 40 ms on Linux, before a streamed command's first output.
      socket.set_option(tcp::no_delay(true), ec);
      auto conn = std::make_shared<Connection>(std::move(socket));
      const uint64_t id = self->next_id_++;
      {
        std::lock_guard lock(self->mu_);
        self->connections_[id] = conn;
      }
      asio::co_spawn(conn->stream.get_executor(), Serve(self, conn),
                     [self, id](std::exception_ptr e) {
                       if (e) {
                         try {
                           std::rethrow_exception(e);
                         } catch (const std::exception& ex) {
                           spdlog::error("http: connection failed: {}", ex.what());
                         }
                       }
                       {
                         std::lock_guard lock(self->mu_);
                         self->connections_.erase(id);
                       }
                       asio::post(self->control_, [self] { self->MaybeFinish(); });
                     });
    }
  }

  // A fixed 503 written without waiting (a fresh socket's send buffer is
  // empty), then close: the accept loop never blocks on a refused client.
  static void RefuseBusy(tcp::socket& socket) {
    static constexpr std::string_view kBody = "{\"error\":\"server busy: too many open connections\"}\n";
    static const std::string kResponse = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                         "Content-Length: " + std::to_string(kBody.size()) +
                                         "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + std::string(kBody);
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(kResponse), ec);
    socket.shutdown(tcp::socket::shutdown_send, ec);
    // Discard what already arrived, so closing does not reset the connection
    // (and drop the 503) because of unread request bytes.
    std::array<char, 16384> sink;
    for (int i = 0; i < 4 && socket.read_some(asio::buffer(sink), ec) > 0;) ++i;
    socket.close(ec);
  }

  static awaitable<void> Write(Connection& c, const HttpServerOptions& o, const Response& resp,
                               unsigned version, bool keep_alive, boost::system::error_code& ec) {
    auto msg = ToMessage(resp, version, keep_alive);
    c.stream.expires_after(o.io_timeout);
    auto write = OnStream(c, [&](auto& s) { return http::async_write(s, msg, asio::redirect_error(use_awaitable, ec)); });
    co_await std::move(write);
  }

  // Reads and discards what the client is still sending (after an early
  // error reply) so closing does not reset the connection before the client
  // reads the reply; bounded in bytes and time.
  static awaitable<void> Drain(Connection& c) {
    boost::system::error_code ec;
    c.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    c.stream.expires_after(std::chrono::seconds(2));
    std::array<char, 16384> buf;
    size_t total = 0;
    while (!ec && total < 8 * 1024 * 1024) {
      auto read = OnStream(c, [&](auto& s) {
        return s.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      });
      const size_t n = co_await std::move(read);
      total += n;
    }
  }

  static awaitable<void> Serve(Impl* self, std::shared_ptr<Connection> conn) {
    Connection& c = *conn;
    const HttpServerOptions& o = self->options_;
    boost::system::error_code ec;
    const auto peer = c.stream.socket().remote_endpoint(ec);
    const std::string remote = ec ? "?" : peer.address().to_string() + ":" + std::to_string(peer.port());
    if (self->tls_) {
      c.tls.emplace(c.stream, *self->tls_);
      c.stream.expires_after(o.io_timeout);
      auto handshake = c.tls->async_handshake(asio::ssl::stream_base::server,
                                              asio::redirect_error(use_awaitable, ec));
      co_await std::move(handshake);
      if (ec) {
        // Plain HTTP to the HTTPS port, an old TLS version, a scanner: no
        // HTTP response, just close.
        spdlog::info("http: {} TLS handshake failed: {}", remote, ec.message());
        c.stream.socket().shutdown(tcp::socket::shutdown_both, ec);
        c.stream.close();
        co_return;
      }
    }
    beast::flat_buffer buffer;
    for (;;) {
      if (self->stopping_) break;
      http::request_parser<http::string_body> parser;
      // No limit while the header is read (a Content-Length above it would
      // fail there): streaming routes have none; every other route gets
      // body_limit right after the header. (Not boost::none: Beast 1.74
      // compares a Content-Length against the optional, and none loses.)
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      parser.header_limit(static_cast<std::uint32_t>(o.header_limit));
      c.idle = true;
      c.stream.expires_after(o.idle_timeout);
      auto read_header = OnStream(c, [&](auto& s) {
        return http::async_read_header(s, buffer, parser, asio::redirect_error(use_awaitable, ec));
      });
      co_await std::move(read_header);
      c.idle = false;
      if (!ec && self->router_->IsStreaming(std::string(parser.get().method_string()),
                                            std::string(parser.get().target().substr(
                                                0, parser.get().target().find('?'))))) {
        const bool again = co_await ServeStreaming(self, conn, buffer, parser, remote);
        if (!again) break;
        continue;
      }
      if (!ec) {
        parser.body_limit(o.body_limit);
        const auto declared = parser.content_length();
        if (declared && *declared > o.body_limit) ec = http::error::body_limit;
      }
      if (!ec && parser.get()[http::field::expect] == "100-continue" && !parser.is_done()) {
        // Only invite the body if it may fit; otherwise the read below fails
        // with body_limit straight away.
        const auto len = parser.content_length();
        if (!len || *len <= o.body_limit) {
          http::response<http::empty_body> cont{http::status::continue_, parser.get().version()};
          c.stream.expires_after(o.io_timeout);
          auto write = OnStream(c, [&](auto& s) {
            return http::async_write(s, cont, asio::redirect_error(use_awaitable, ec));
          });
          co_await std::move(write);
        }
      }
      if (!ec) {
        if (!parser.is_done()) ReserveBodyReads(buffer, parser.content_length());
        c.stream.expires_after(o.io_timeout);
        auto read = OnStream(c, [&](auto& s) {
          return http::async_read(s, buffer, parser, asio::redirect_error(use_awaitable, ec));
        });
        co_await std::move(read);
      }
      if (ec) {
        if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
            ec == beast::error::timeout || ec == asio::error::connection_reset || ec == asio::error::eof ||
            ec == asio::ssl::error::stream_truncated) {
          break;
        }
        Response err;
        if (ec == http::error::body_limit) {
          err = ErrorResponse(413, "request body too large (limit " + std::to_string(o.body_limit) + " bytes)");
        } else if (ec == http::error::header_limit) {
          err = ErrorResponse(431, "request headers too large (limit " + std::to_string(o.header_limit) + " bytes)");
        } else {
          err = ErrorResponse(400, "malformed HTTP request: " + ec.message());
        }
        spdlog::info("http: {} rejected: {}", remote, err.status);
        boost::system::error_code wec;
        co_await Write(c, o, err, 11, false, wec);
        if (!wec) co_await Drain(c);
        break;
      }

      auto msg = parser.release();
      const unsigned version = msg.version();
      const bool keep_alive = msg.keep_alive();
      // One way in: only origin-form targets reach the router; absolute-,
      // authority- and asterisk-form are refused here, before any routing.
      if (auto bad = OriginFormError(std::string_view(msg.target().data(), msg.target().size()))) {
        spdlog::info("http: {} rejected: 400 ({})", remote, *bad);
        co_await Write(c, o, ErrorResponse(400, *bad), version, false, ec);
        break;
      }
      Request req = ToRequest(msg, remote);
      // The read buffer still holds this request's raw bytes (its API key, a
      // secret PUT's value): zero them, unless it already holds the start of
      // a pipelined request (then they go on a later turn).
      if (buffer.size() == 0) {
        buffer.clear();
        auto raw = buffer.prepare(buffer.capacity());
        SecureWipe(raw.data(), raw.size());
        // Room reserved for a body is not kept by an idle connection.
        if (buffer.capacity() > 16 * 1024) buffer.shrink_to_fit();
      }
      const auto start = std::chrono::steady_clock::now();
      // Run the handler on the pool; resume here (on this strand) after.
      Response resp = co_await asio::co_spawn(
          self->handlers_.get_executor(),
          [self, &req]() -> awaitable<Response> { co_return self->router_->Dispatch(req); },
          use_awaitable);
      if (resp.websocket || resp.websocket_async) {
        // A WebSocket route: only an upgrade request gets the session.
        if (!beast::websocket::is_upgrade(msg)) {
          resp = ErrorResponse(426, "this endpoint speaks WebSocket: send an Upgrade: websocket request");
          resp.headers.emplace_back("Upgrade", "websocket");
        } else {
          WebSocketHandler handler{std::move(resp.websocket), std::move(resp.websocket_async)};
          int close_code = 0;
          if (c.tls) {
            close_code = co_await ServeWebSocket(*c.tls, std::move(msg), std::move(handler), self->ws_options_,
                                                 self->ws_sessions_);
          } else {
            close_code = co_await ServeWebSocket(c.stream, std::move(msg), std::move(handler), self->ws_options_,
                                                 self->ws_sessions_);
          }
          const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - start).count();
          spdlog::info("http: {} {} {} 101 websocket closed {} {}ms", remote, req.method, req.path, close_code, ms);
          break;
        }
      }
      if (resp.deferred) {
        auto begin_work = std::move(resp.deferred);
        Response later = co_await Deferred(self, std::move(begin_work));
        resp = std::move(later);
      }
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start).count();
      spdlog::info("http: {} {} {} {} {}ms", remote, req.method, req.path, resp.status, ms);
      const bool again = keep_alive && !self->stopping_;
      co_await Write(c, o, resp, version, again, ec);
      if (ec || !again) break;
    }
    c.stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    c.stream.close();
  }

  // --- streaming routes (Router::AddStreaming; docs/files.md) -------------
  // Wakes a coroutine waiting on its connection's strand when a ByteChannel
  // or a deferred response changes. The waiter re-checks its condition
  // before each wait, so a notification is never lost: one that comes
  // before the wait starts finds the condition already true.
  struct Signal {
    explicit Signal(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    std::function<void()> Notifier(const std::shared_ptr<Signal>& self) {
      std::weak_ptr<Signal> weak = self;
      auto ex = timer.get_executor();
      return [weak, ex] {
        asio::post(ex, [weak] {
          if (auto s = weak.lock()) s->timer.cancel();
        });
      };
    }
    awaitable<void> Wait() {
      boost::system::error_code ignored;
      timer.expires_at(asio::steady_timer::time_point::max());
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
    }
  };

  // One request on a streaming route, start to end: dispatch after the
  // headers, feed the body (if any) into a ByteChannel while the deferred
  // work drains it, then write the response, streaming its body_stream.
  // Returns whether the connection may serve another request.
  static awaitable<bool> ServeStreaming(Impl* self, std::shared_ptr<Connection> conn, beast::flat_buffer& buffer,
                                        http::request_parser<http::string_body>& header_parser,
                                        const std::string& remote) {
    Connection& c = *conn;
    const HttpServerOptions& o = self->options_;
    boost::system::error_code ec;
    http::request_parser<http::buffer_body> p{std::move(header_parser)};
    p.body_limit(std::numeric_limits<std::uint64_t>::max());  // any size: it is never held whole
    Request req;
    {
      const auto& h = p.get();
      if (auto bad = OriginFormError(std::string_view(h.target().data(), h.target().size()))) {
        co_await Write(c, o, ErrorResponse(400, *bad), h.version(), false, ec);
        co_return false;
      }
      req.method = std::string(h.method_string());
      const std::string target(h.target());
      const auto q = target.find('?');
      req.path = target.substr(0, q);
      if (q != std::string::npos) req.query = target.substr(q + 1);
      for (const auto& field : h) req.headers[std::string(field.name_string())] = std::string(field.value());
      req.remote = remote;
    }
    const unsigned version = p.get().version();
    const bool keep_alive = p.get().keep_alive();
    const bool expect_continue = p.get()[http::field::expect] == "100-continue";
    auto signal = std::make_shared<Signal>(c.stream.get_executor());
    std::shared_ptr<ByteChannel> in;
    if (!p.is_done()) {
      in = std::make_shared<ByteChannel>(4);
      in->SetNotifier(signal->Notifier(signal));
      req.body_stream = in;
    }
    struct Stop {  // the other side may outlive this coroutine: unhook and end it
      std::shared_ptr<ByteChannel> ch;
      ~Stop() {
        if (ch) {
          ch->SetNotifier({});
          ch->Abort();
        }
      }
    } stop_in{in};
    const auto start = std::chrono::steady_clock::now();
    Response resp = co_await asio::co_spawn(
        self->handlers_.get_executor(),
        [self, &req]() -> awaitable<Response> { co_return self->router_->Dispatch(req); }, use_awaitable);
    bool body_read = p.is_done();
    if (resp.deferred) {
      // The response arrives from another thread into `slot`.
      struct Slot {
        std::mutex mu;
        std::optional<Response> response;
      };
      auto slot = std::make_shared<Slot>();
      {
        std::lock_guard lock(self->deferred_mu_);
        ++self->deferred_;
      }
      auto notify = signal->Notifier(signal);
      auto once = std::make_shared<std::atomic<bool>>(false);
      auto begin = std::move(resp.deferred);
      begin([self, slot, notify, once](Response r) {
        if (once->exchange(true)) return;
        {
          std::lock_guard lock(slot->mu);
          slot->response = std::move(r);
        }
        notify();
        std::lock_guard lock(self->deferred_mu_);
        if (--self->deferred_ == 0) self->deferred_cv_.notify_all();
      });
      auto ready = [&] {
        std::lock_guard lock(slot->mu);
        return slot->response.has_value();
      };
      if (in && expect_continue && !ready()) {
        http::response<http::empty_body> cont{http::status::continue_, version};
        c.stream.expires_after(o.io_timeout);
        auto write = OnStream(c, [&](auto& s) { return http::async_write(s, cont, asio::redirect_error(use_awaitable, ec)); });
        co_await std::move(write);
        if (ec) co_return false;
      }
      // Feed the body while the work runs; stop early if it answered. Each
      // piece is read into the string handed on. A Content-Length body is
      // read straight from the connection (after what the header read had
      // already buffered): a read or two per MiB, no parser copy. A chunked
      // body goes through the parser, 64 KiB per read (ReserveBodyReads).
      const bool raw = in && !p.chunked() && p.content_length().has_value();
      std::uint64_t raw_left = raw ? *p.content_length() : 0;
      if (in && !raw) ReserveBodyReads(buffer, p.content_length());
      bool client_failed = false;
      while (in && (raw ? raw_left > 0 : !p.is_done()) && !ready()) {
        std::string chunk;
        if (raw) {
          const size_t want = static_cast<size_t>(std::min<std::uint64_t>(kStreamPieceBytes, raw_left));
          chunk.resize(want);
          size_t have = asio::buffer_copy(asio::buffer(chunk), buffer.data());
          buffer.consume(have);
          if (have < want) {
            c.stream.expires_after(o.io_timeout);
            auto read = OnStream(c, [&](auto& s) {
              return asio::async_read(s, asio::buffer(chunk.data() + have, want - have),
                                      asio::redirect_error(use_awaitable, ec));
            });
            const size_t got = co_await std::move(read);
            have += got;
          }
          chunk.resize(have);
          raw_left -= have;
        } else {
          chunk.resize(kStreamPieceBytes);
          p.get().body().data = chunk.data();
          p.get().body().size = chunk.size();
          c.stream.expires_after(o.io_timeout);
          auto read = OnStream(c, [&](auto& s) { return http::async_read(s, buffer, p, asio::redirect_error(use_awaitable, ec)); });
          co_await std::move(read);
          if (ec == http::error::need_buffer) ec = {};
          chunk.resize(chunk.size() - p.get().body().size);
        }
        if (ec) {
          client_failed = true;
          in->Abort();
          break;
        }
        if (chunk.empty()) continue;
        bool closed = false;
        for (;;) {
          const auto r = in->TryPush(chunk);
          if (r == ByteChannel::Poll::kReady) break;
          if (r == ByteChannel::Poll::kClosed) {
            closed = true;
            break;
          }
          co_await signal->Wait();
        }
        if (closed) break;
      }
      body_read = raw ? raw_left == 0 : p.is_done();
      if (in && body_read && !client_failed) in->Finish();
      if (buffer.size() == 0 && buffer.capacity() > 16 * 1024) buffer.shrink_to_fit();
      while (!ready()) co_await signal->Wait();
      {
        std::lock_guard lock(slot->mu);
        resp = std::move(*slot->response);
      }
      if (client_failed) co_return false;
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start).count();
    spdlog::info("http: {} {} {} {} {}ms", remote, req.method, req.path, resp.status, ms);
    // A body we did not read to its end cannot be followed by another request.
    const bool again = keep_alive && body_read && !self->stopping_;
    if (!resp.body_stream) {
      co_await Write(c, o, resp, version, again, ec);
      if (!ec && !body_read) co_await Drain(c);
      co_return !ec && again;
    }
    std::shared_ptr<ByteChannel> out = resp.body_stream;
    out->SetNotifier(signal->Notifier(signal));
    Stop stop_out{out};
    http::response<http::buffer_body> res{static_cast<http::status>(resp.status), version};
    res.set(http::field::server, "osb");
    res.set(http::field::content_type, resp.content_type);
    for (const auto& [k, v] : resp.headers) res.set(k, v);
    if (resp.stream_length >= 0) {
      res.content_length(static_cast<uint64_t>(resp.stream_length));
    } else {
      res.chunked(true);
    }
    res.keep_alive(again);
    res.body().data = nullptr;
    res.body().more = true;
    http::response_serializer<http::buffer_body> sr{res};
    c.stream.expires_after(o.io_timeout);
    auto head = OnStream(c, [&](auto& s) { return http::async_write_header(s, sr, asio::redirect_error(use_awaitable, ec)); });
    co_await std::move(head);
    if (ec) co_return false;
    std::string chunk;
    for (;;) {
      const auto r = out->TryPop(&chunk);
      if (r == ByteChannel::Poll::kWait) {
        co_await signal->Wait();
        continue;
      }
      if (r == ByteChannel::Poll::kClosed) break;
      res.body().data = chunk.data();
      res.body().size = chunk.size();
      res.body().more = true;
      c.stream.expires_after(o.io_timeout);
      auto write = OnStream(c, [&](auto& s) { return http::async_write(s, sr, asio::redirect_error(use_awaitable, ec)); });
      co_await std::move(write);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return false;
    }
    if (out->aborted()) {
      // The producer failed midway: cut the connection so the body is
      // visibly incomplete (short Content-Length or no last chunk).
      spdlog::warn("http: {} {} {}: response stream failed midway; closing", remote, req.method, req.path);
      co_return false;
    }
    res.body().data = nullptr;
    res.body().size = 0;
    res.body().more = false;
    c.stream.expires_after(o.io_timeout);
    auto last = OnStream(c, [&](auto& s) { return http::async_write(s, sr, asio::redirect_error(use_awaitable, ec)); });
    co_await std::move(last);
    if (ec == http::error::need_buffer) ec = {};
    co_return !ec && again;
  }

  const HttpServerOptions options_;
  const std::shared_ptr<const Router> router_;
  std::shared_ptr<asio::ssl::context> tls_;  // set by Start() for HTTPS
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::strand<asio::io_context::executor_type> control_;
  asio::steady_timer grace_timer_;
  asio::thread_pool handlers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_id_{0};
  std::atomic<uint16_t> port_{0};
  WebSocketOptions ws_options_;
  WebSocketSessions ws_sessions_;
  std::mutex deferred_mu_;
  std::condition_variable deferred_cv_;
  size_t deferred_ = 0;  // deferred responses not yet delivered
  std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
  uint64_t refused_ = 0;  // accept strand only
};

HttpServer::HttpServer(HttpServerOptions options, std::shared_ptr<const Router> router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {}

HttpServer::~HttpServer() {
  Stop();
  Wait();
}

Status HttpServer::Start() { return impl_->Start(); }
uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::Stop() { impl_->Stop(); }
void HttpServer::Wait() { impl_->Wait(); }

Result<std::pair<std::string, uint16_t>> ParseListenAddress(const std::string& field,
                                                            const std::string& value) {
  const auto colon = value.rfind(':');
  auto bad = [&] {
    return MakeError(ErrorCode::kInvalidArgument,
                     field + ": expected HOST:PORT (e.g. 127.0.0.1:8080), got '" + value + "'");
  };
  if (colon == std::string::npos || colon == 0) return bad();
  std::string host = value.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = value.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5) return bad();
  unsigned port = 0;
  for (char ch : port_text) {
    if (ch < '0' || ch > '9') return bad();
    port = port * 10 + static_cast<unsigned>(ch - '0');
  }
  if (port > 65535) return bad();
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (ec) return bad();
  return std::make_pair(host, static_cast<uint16_t>(port));
}

}  // namespace osb::api
