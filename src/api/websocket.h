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
#pragma once

#include <cstdint>
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

}  // namespace osb::api
