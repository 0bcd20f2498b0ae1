// The per-connection HTTP/1.1 loop shared by every listener once the client
// side is established (plain socket, TLS terminated with our leaf, or an
// in-memory stream in tests): read a request head -> the stage chain of
// request_pipeline.h -> reuse or dial the upstream (UpstreamDialer) ->
// forward the head and relay the body (re-framed when substitution may
// change its length) -> read and scrub the response head -> relay the
// scrubbed body back -> audit -> next request (keep-alive) or close.
// `Upgrade` requests answered with 101 become a two-way tunnel (server
// frames scrubbed when the session has values to scrub).
// Every request whose head was read ends in exactly one audit line and one
// count in Metrics, whether forwarded or refused.
//
// Body framing strategy (bounded memory for any size):
//   no substitution possible  -> Content-Length bodies stream through
//                                unchanged; chunked is decoded and re-encoded.
//   substitution possible and Content-Length <= limits.body_buffer_limit
//                             -> the body is read, substituted in memory and
//                                sent with its new exact Content-Length.
//   otherwise                 -> streamed through the replacer and re-framed
//                                as Transfer-Encoding: chunked (responses to
//                                an HTTP/1.0 client: delimited by close).
//   plain HTTP requests       -> body buffered up to the limit (413 above) and
//                                scanned; any sealed token -> 403, nothing sent.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which needs std::exchange
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>

#include "secretsproxy/audit.h"
#include "secretsproxy/byte_stream.h"
#include "secretsproxy/http_message.h"
#include "secretsproxy/metrics.h"
#include "secretsproxy/proxy.h"
#include "secretsproxy/request_pipeline.h"
#include "secretsproxy/upstream_dialer.h"

namespace osb::secretsproxy {

// What the request path needs, and nothing else. Borrowed: everything must
// outlive the ServeHttp call (the listener holds their owner meanwhile).
struct ExchangeEnv {
  const ProxyLimits* limits = nullptr;
  uint16_t transparent_http_port = 80;
  const SessionRegistry* sessions = nullptr;
  UpstreamDialer* dialer = nullptr;
  AuditLog* audit = nullptr;
  Metrics* metrics = nullptr;
  // Shared state of the signing stages (signing_stage.h); null = a default
  // env without dialer, registry or OAuth cache.
  SigningEnv* signing = nullptr;
};

// Serves requests on `client` until it closes, a request asks to close, a
// refusal ends it, or it becomes a tunnel. Never throws on bad input.
boost::asio::awaitable<void> ServeHttp(ExchangeEnv env, std::shared_ptr<ByteStream> client,
                                       ExchangeOptions options);

// A complete error response with a small JSON body {"error": reason}.
std::string ErrorResponse(int status, std::string_view reason, bool close);

enum class HeadRead { kOk, kEof, kTimeout, kBad, kTooLarge, kError };

// Reads until `buf` holds a complete request head; consumes it from buf.
boost::asio::awaitable<HeadRead> ReadRequestHead(ByteStream& s, std::string& buf, RequestHead* head,
                                                 const ProxyLimits& limits, Millis first_byte_timeout,
                                                 std::string* reason, bool consume = true);

}  // namespace osb::secretsproxy
