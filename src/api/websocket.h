// A WebSocket connection as route handlers see it: transport-neutral (no
// Beast here), used from ordinary threads.
//
// A route answers an upgrade by setting Response::websocket; after the
// handshake the server calls that function on a thread of its own with the
// connection's channel and closes the connection (1000) when it returns.
// Backpressure both ways: Send blocks while more than the send budget is
// queued for a slow client; the server stops reading from the client while
// `Receive` is not draining (bounded inbound queue). Messages larger than
// the limit (docs/api.md) end the connection with close code 1009; frames
// that break RFC 6455 with 1002; handlers close with 1008 on a message they
// cannot accept.
// Thread safety: Send/Close from any thread; Receive from one thread.
// Routes that must not hold a thread per connection use
// AsyncWebSocketChannel below instead (same limits, same close codes).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace osb::api {

struct WsMessage {
  bool binary = false;
  std::string data;
};

inline constexpr uint16_t kWsNormalClose = 1000;
inline constexpr uint16_t kWsGoingAway = 1001;
inline constexpr uint16_t kWsPolicyViolation = 1008;
inline constexpr uint16_t kWsTooBig = 1009;
inline constexpr uint16_t kWsInternalError = 1011;

class WebSocketChannel {
 public:
  virtual ~WebSocketChannel() = default;
  // Queues one message; false once the connection is closed (or closing).
  virtual bool Send(WsMessage message) = 0;
  // The next message from the client; nullopt once it closed or the
  // connection broke.
  virtual std::optional<WsMessage> Receive() = 0;
  // Sends what is queued, then a close frame with `code` and `reason`, and
  // ends the connection. Idempotent (the first call wins).
  virtual void Close(uint16_t code, const std::string& reason) = 0;
};

// The same connection for handlers that never block (Response::
// websocket_async): no thread is held for the session. Every call returns
// at once; callbacks run later on the session's strand (never inside the
// call), or on the server's thread during shutdown (AbortAll), so a handler
// guards its own state with a lock. Flow control is the handler's: it asks
// for one client message at a time (the server keeps reading up to the
// inbound budget meanwhile) and learns when each of its messages was
// written, so it can wait before producing the next one.
class AsyncWebSocketChannel {
 public:
  virtual ~AsyncWebSocketChannel() = default;
  // Delivers the next message from the client, or nullopt once it closed,
  // the connection broke, or the handler closed. One receive at a time.
  virtual void AsyncReceive(std::function<void(std::optional<WsMessage>)> on_message) = 0;
  // Queues one message; `sent(true)` once it was written, `sent(false)` when
  // the connection ended first (or was closing already). `sent` may be null.
  virtual void AsyncSend(WsMessage message, std::function<void(bool)> sent) = 0;
  // As WebSocketChannel::Close.
  virtual void Close(uint16_t code, const std::string& reason) = 0;
  // The handler is finished with the session and holds nothing it must
  // release any more (the server's WaitIdle waits for every Done). Once.
  virtual void Done() = 0;
};

}  // namespace osb::api
