// The server side of WebSocket connections (RFC 6455 over Beast) for
// HttpServer: the handshake on an already-read upgrade request, the read and
// write loops on the connection's strand, and the channel handed to the
// route's handler: a thread of its own with the blocking WebSocketChannel,
// or, for an asynchronous handler, no thread at all (AsyncWebSocketChannel,
// callbacks on the strand). Internal to src/api.
//
// Limits: messages from the client up to `max_message` bytes (larger: close
// 1009); at most `inbound_budget` bytes received and not yet taken by the
// handler (then reading pauses); Send blocks above `send_budget` queued
// bytes. Idle connections are pinged; one that answers nothing within
// `idle_timeout` is dropped.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "api/websocket.h"

namespace osb::api {

struct WebSocketOptions {
  size_t max_message = 1024 * 1024;
  size_t inbound_budget = 1024 * 1024;
  size_t send_budget = 1024 * 1024;
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds handshake_timeout{30};
};

// One of the two is set: `async` wins.
struct WebSocketHandler {
  std::function<void(std::shared_ptr<WebSocketChannel>)> blocking;
  std::function<void(std::shared_ptr<AsyncWebSocketChannel>)> async;
};

// Tracks live sessions so the server can close them at shutdown and wait
// for their handlers (threads, or asynchronous handlers' Done).
class WebSocketSessions {
 public:
  // Closes every session with 1001 (going away).
  void CloseAll();
  // Breaks every session at once (its handler sees a closed channel; an
  // asynchronous handler's pending callbacks run on the calling thread —
  // the server calls this only after its io threads stopped).
  void AbortAll();
  // Blocks until every handler thread has returned and every asynchronous
  // handler called Done.
  void WaitIdle();

  class Entry;
  void Add(const std::shared_ptr<Entry>& e);
  void Done(const Entry* e);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::weak_ptr<Entry>> live_;
  size_t threads_ = 0;
  friend class Entry;
};

using PlainStream = boost::beast::tcp_stream;
using TlsStream = boost::asio::ssl::stream<boost::beast::tcp_stream&>;

// Completes the upgrade of `request` on `stream` and serves the session
// until it ends; runs a blocking `handler` on its own thread meanwhile (an
// asynchronous one is started on the strand and may outlive this call). Returns the
// close code sent or received (for the access log).
boost::asio::awaitable<int> ServeWebSocket(PlainStream& stream,
                                           boost::beast::http::request<boost::beast::http::string_body> request,
                                           WebSocketHandler handler, const WebSocketOptions& options,
                                           WebSocketSessions& sessions);
boost::asio::awaitable<int> ServeWebSocket(TlsStream& stream,
                                           boost::beast::http::request<boost::beast::http::string_body> request,
                                           WebSocketHandler handler, const WebSocketOptions& options,
                                           WebSocketSessions& sessions);

}  // namespace osb::api
