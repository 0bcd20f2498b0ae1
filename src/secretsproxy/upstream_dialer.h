// UpstreamDialer: the seam between the request path and the network. One
// call = name resolution + address policy + TCP connect + (for HTTPS) a
// verified TLS handshake, yielding a ready ByteStream or an HTTP status and
// a fixed reason text for the client. The real implementation is
// NetworkDialer (upstream_connector.h); tests pass a fake that hands out
// in-memory streams (byte_stream.h MemoryStream).
// Implementations must not throw on the data path and must run on the
// calling coroutine's executor.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which needs std::exchange
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>

#include "secretsproxy/byte_stream.h"
#include "secretsproxy/request_stages.h"

namespace osb::secretsproxy {

struct UpstreamConnection {
  std::shared_ptr<ByteStream> stream;  // null on failure
  int status = 0;                      // 403 refused, 502 failed, 504 timed out
  std::string reason;                  // fixed text, never a value
};

class UpstreamDialer {
 public:
  virtual ~UpstreamDialer() = default;
  // `target` by value: the coroutine frame keeps its own copy.
  virtual boost::asio::awaitable<UpstreamConnection> Dial(Target target, bool tls) = 0;
  // May a tunnel toward `target` be opened at all? Answered before an
  // explicit CONNECT gets "200 Connection established": name resolution and
  // the address policy, no connection. stream stays null; status 0 = no
  // objection (DNS failures included: Dial reports those inside the tunnel),
  // 403 = every address is refused (own door, own host, private). Dial
  // checks again whatever Precheck said (the name may resolve differently).
  // The default (test fakes) has no objection.
  virtual boost::asio::awaitable<UpstreamConnection> Precheck(Target target) {
    (void)target;
    co_return UpstreamConnection{};
  }
};

}  // namespace osb::secretsproxy
