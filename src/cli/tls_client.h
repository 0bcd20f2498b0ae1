// The client side of TLS and of network errors, one home for the HTTP and
// the WebSocket clients (http_client.cpp, ws_client.cpp). Internal to osb_cli.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/error.hpp>
#include <string>
#include <string_view>

#include "cli/api_url.h"
#include "common/result.h"

namespace osb::cli {

// TLS 1.2 at least, the peer's certificate verified against OpenSSL's
// default trust store or, when `ca_file` is not empty, only against that PEM
// CA bundle. An unreadable CA file is kFailedPrecondition naming it.
Status ConfigureTlsClient(boost::asio::ssl::context& tls, const std::string& ca_file);

// SNI and host name verification for a DNS name, IP address verification
// for an IP literal; call before the handshake.
void SetTlsPeerName(SSL* ssl, const std::string& host);

// kUnavailable "cannot reach <url>: <what>: <cause>" ("timed out" for a
// stream's expiry).
Error NetError(const ApiUrl& base, std::string_view what, const boost::beast::error_code& ec);

}  // namespace osb::cli
