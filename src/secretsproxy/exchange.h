// The per-connection HTTP/1.1 loop shared by every listener once the client
// side is established (plain socket, or TLS terminated with our leaf):
// read a request head -> stages (method, target/Host agreement, allowlist,
// plaintext guard or token substitution) -> connect/reuse the upstream ->
// forward the head and stream the body (re-framed when substitution may
// change its length) -> read the response head -> scrub it -> stream the
// scrubbed body back -> audit -> next request (keep-alive) or close.
// `Upgrade` requests answered with 101 become a raw two-way tunnel.
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

#include "secretsproxy/byte_stream.h"
#include "secretsproxy/http_message.h"
#include "secretsproxy/proxy_shared.h"
#include "secretsproxy/request_stages.h"

namespace osb::secretsproxy {

enum class ExchangeMode {
  kTls,               // MITM'd TLS; fixed target from CONNECT or SNI
  kExplicitPlain,     // explicit proxy port, absolute-form http:// requests
  kTransparentPlain,  // redirected port 80, target from Host
};

struct ExchangeOptions {
  ExchangeMode mode = ExchangeMode::kTls;
  std::optional<Target> fixed_target;  // kTls
  std::string initial_bytes;           // already read from the client
  std::string source_ip;
  bool sni_mismatch = false;           // client's SNI disagrees with CONNECT: 421
};

boost::asio::awaitable<void> ServeHttp(std::shared_ptr<ProxyShared> shared, std::shared_ptr<ByteStream> client,
                                       ExchangeOptions options);

// A complete error response with a small JSON body {"error": reason}.
std::string ErrorResponse(int status, std::string_view reason, bool close);

enum class HeadRead { kOk, kEof, kTimeout, kBad, kTooLarge, kError };

// Reads until `buf` holds a complete request head; consumes it from buf.
boost::asio::awaitable<HeadRead> ReadRequestHead(ByteStream& s, std::string& buf, RequestHead* head,
                                                 const ProxyLimits& limits, Millis first_byte_timeout,
                                                 std::string* reason, bool consume = true);

}  // namespace osb::secretsproxy
