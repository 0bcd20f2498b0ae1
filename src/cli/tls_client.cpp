#include "cli/tls_client.h"

#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/error.hpp>

namespace osb::cli {

Status ConfigureTlsClient(boost::asio::ssl::context& tls, const std::string& ca_file) {
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  if (ca_file.empty()) {
    tls.set_default_verify_paths();
  } else {
    boost::system::error_code ec;
    tls.load_verify_file(ca_file, ec);
    if (ec) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "--ca-file: cannot load PEM CA certificates from " + ca_file + ": " + ec.message());
    }
  }
  tls.set_verify_mode(boost::asio::ssl::verify_peer);
  return {};
}

void SetTlsPeerName(SSL* ssl, const std::string& host) {
  boost::system::error_code addr_ec;
  (void)boost::asio::ip::make_address(host, addr_ec);
  if (addr_ec) {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  }
}

Error NetError(const ApiUrl& base, std::string_view what, const boost::beast::error_code& ec) {
  std::string cause = ec == boost::beast::error::timeout ? std::string("timed out") : ec.message();
  return MakeError(ErrorCode::kUnavailable, "cannot reach " + base.ToString() + ": " + std::string(what) + ": " + cause);
}

}  // namespace osb::cli
