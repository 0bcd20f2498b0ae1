// Credentials for the control plane <-> worker gRPC channels.
//
// With OPENSANDBOX_GRPC_TLS_CA, _CERT and _KEY set (paths to PEM files), both
// directions use mutual TLS: each side presents its certificate and verifies
// the peer's against the CA; TLS 1.3 is the minimum; a peer without a valid
// certificate from that CA is refused during the handshake. With none set the
// channel is plaintext (the caller must warn). Setting only some is an error.
//
// Certificates: scripts/gen-grpc-certs.sh makes a CA and a certificate usable
// by both roles (serverAuth + clientAuth, SANs for the addresses in use).
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"

namespace osb::proto {

struct GrpcTlsFiles {
  std::string ca_path;
  std::string cert_path;
  std::string key_path;
};

// PEM contents, read once at startup.
struct GrpcTlsMaterial {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

// nullopt = plaintext. Error if only some variables are set or a file
// cannot be read (the message names the variable and path, never contents).
Result<std::optional<GrpcTlsMaterial>> GrpcTlsFromEnvironment(
    const std::function<const char*(const char*)>& getenv = nullptr);
Result<GrpcTlsMaterial> LoadGrpcTls(const GrpcTlsFiles& files);

// Server side: requires and verifies a client certificate, TLS 1.3 minimum.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const std::optional<GrpcTlsMaterial>& tls);

// Client side: presents our certificate, verifies the server against the CA
// (and its name against `target`'s host), TLS 1.3 minimum.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const std::optional<GrpcTlsMaterial>& tls);

// The subject common name of a PEM certificate; nullopt if unreadable.
std::optional<std::string> CertificateCommonName(const std::string& cert_pem);

// The verified client certificate's common name of a call, or nullopt for a
// plaintext (unauthenticated) channel. Under mutual TLS a worker's id is its
// certificate's CN, so one worker cannot act as another.
std::optional<std::string> PeerCommonName(const grpc::ServerContext& context);

}  // namespace osb::proto
