// Stage "upstream connect": resolve the target (or use a --resolve override),
// keep only addresses the AddressPolicy allows, connect to exactly one of
// those checked addresses (no second resolution, so no rebinding window),
// then — for HTTPS — a TLS handshake verified against the system store plus
// the optional extra CA, with SNI, hostname (or IP) verification and ALPN
// http/1.1. Failures come back as an HTTP status for the client
// (403 address refused, 502 DNS/connect/TLS failure, 504 timeout) and a fixed
// reason text. Runs on the calling connection's strand.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which needs std::exchange
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>

#include "secretsproxy/byte_stream.h"
#include "secretsproxy/proxy_shared.h"
#include "secretsproxy/request_stages.h"

namespace osb::secretsproxy {

struct UpstreamConnection {
  std::shared_ptr<ByteStream> stream;  // null on failure
  int status = 0;
  std::string reason;
};

boost::asio::awaitable<UpstreamConnection> ConnectUpstream(std::shared_ptr<ProxyShared> shared, Target target,
                                                           bool tls);

}  // namespace osb::secretsproxy
