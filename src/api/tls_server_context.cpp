#include "api/tls_server_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace osb::api {

namespace asio = boost::asio;

namespace {

// The newest OpenSSL error queue entry as text (then the queue is cleared).
std::string OpenSslReason(const boost::system::error_code& ec) {
  std::string reason;
  if (unsigned long e = ERR_peek_last_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    reason = buf;
  }
  ERR_clear_error();
  return reason.empty() ? ec.message() : reason;
}

}  // namespace

Result<std::shared_ptr<asio::ssl::context>> LoadServerTlsContext(const std::string& cert_file,
                                                                const std::string& key_file) {
  if (cert_file.empty() != key_file.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "--tls-cert and --tls-key must be given together");
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return MakeError(ErrorCode::kInternal, "cannot set the minimum TLS version to 1.2");
  }
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_compression |
                   asio::ssl::context::single_dh_use);
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--tls-cert: cannot load a PEM certificate chain from " + cert_file + ": " + OpenSslReason(ec));
  }
  ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--tls-key: cannot load a PEM private key from " + key_file + ": " + OpenSslReason(ec));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return MakeError(ErrorCode::kInvalidArgument,
                     "--tls-key: " + key_file + " does not match the certificate in " + cert_file);
  }
  return ctx;
}

}  // namespace osb::api
