// Internal: the per-connection entry points of the three listeners and the
// metrics endpoint. Each runs as one coroutine on the connection's strand.
//   explicit:          CONNECT host:port -> MITM TLS; absolute-form http:// -> plain
//   transparent TLS:   peek the ClientHello, target = SNI, then MITM TLS
//   transparent HTTP:  target = Host header
// Unknown source addresses are refused (403 where HTTP can be spoken,
// otherwise the connection is closed) and audited.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which needs std::exchange
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "secretsproxy/proxy_shared.h"

namespace osb::secretsproxy {

boost::asio::awaitable<void> HandleExplicit(std::shared_ptr<ProxyShared> shared, boost::asio::ip::tcp::socket sock);
boost::asio::awaitable<void> HandleTransparentTls(std::shared_ptr<ProxyShared> shared,
                                                  boost::asio::ip::tcp::socket sock);
boost::asio::awaitable<void> HandleTransparentHttp(std::shared_ptr<ProxyShared> shared,
                                                   boost::asio::ip::tcp::socket sock);
boost::asio::awaitable<void> HandleMetrics(std::shared_ptr<ProxyShared> shared, boost::asio::ip::tcp::socket sock);

}  // namespace osb::secretsproxy
