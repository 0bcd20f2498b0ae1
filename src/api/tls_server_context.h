// The TLS configuration of the REST API (`osb server --tls-cert/--tls-key`).
//
// TLS 1.2 is the minimum (1.0/1.1, SSLv3 and compression are off); the
// server prefers its own cipher order (OpenSSL's default list, which is
// forward-secret AEAD first). The certificate file is a PEM chain, leaf
// first; the key file a PEM private key that must match the leaf.
//
// Errors: kInvalidArgument naming the flag and file and OpenSSL's reason
// (never the file's content).
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "common/result.h"

namespace osb::api {

Result<std::shared_ptr<boost::asio::ssl::context>> LoadServerTlsContext(const std::string& cert_file,
                                                                        const std::string& key_file);

}  // namespace osb::api
