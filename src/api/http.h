// Transport-neutral HTTP request/response used by the Router and handlers, so
// handler code never includes Beast. Owned values; cheap to move.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace osb::api {

class ByteChannel;  // api/byte_channel.h

struct CaseInsensitiveLess {
  bool operator()(const std::string& a, const std::string& b) const;
};

struct Request {
  std::string method;  // upper case: "GET", "POST", …
  std::string path;    // without the query string, not yet percent-decoded
  std::string query;   // raw, without '?'
  std::map<std::string, std::string, CaseInsensitiveLess> headers;
  std::string body;
  std::string remote;  // peer address, for logs

  // Filled by the Router: {param} values (percent-decoded) and, for
  // authenticated routes, the caller's org.
  std::map<std::string, std::string> params;
  std::string org_id;
  // Streaming routes (Router::AddStreaming) only: the request body as it
  // arrives; null when the request has none. `body` stays empty.
  std::shared_ptr<ByteChannel> body_stream;

  std::string Header(const std::string& name) const;
  const std::string& Param(const std::string& name) const;
};

struct Response;
class WebSocketChannel;
class AsyncWebSocketChannel;
// Sends the response of a deferred request; call exactly once, from any thread.
using Deliver = std::function<void(Response)>;

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  // Long work (an exec): a handler sets this instead of a status; the server
  // calls it once, right away, with a Deliver for the real response, and
  // holds no handler thread while the work runs elsewhere.
  std::function<void(Deliver)> deferred;
  // A WebSocket route (api/websocket.h): when the request is an upgrade the
  // server completes the handshake and runs this on a thread of its own;
  // a plain GET to such a route gets 426. Other fields are ignored then.
  std::function<void(std::shared_ptr<WebSocketChannel>)> websocket;
  // The same without a thread (api/websocket.h AsyncWebSocketChannel): the
  // server calls it once on the session's strand after the handshake.
  std::function<void(std::shared_ptr<AsyncWebSocketChannel>)> websocket_async;
  // Streaming routes only: the body, written as it is produced (`body` is
  // ignored). stream_length >= 0 sends a Content-Length, else chunked; a
  // stream that ends in Abort() cuts the connection so the client sees an
  // incomplete body, never a complete-looking one.
  std::shared_ptr<ByteChannel> body_stream;
  int64_t stream_length = -1;
};

// {"error": message} with the status mapped from the error code:
// invalid 400, unauthenticated 401, not found 404, exists 409, too large 413,
// unavailable 503, anything else 500 (with a generic message; the detail is
// logged, never a secret).
Response ErrorResponse(const Error& error);
Response ErrorResponse(int status, const std::string& message);

}  // namespace osb::api
