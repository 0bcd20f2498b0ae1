// Credentials for the control plane <-> worker gRPC channels.
//
// With OPENSANDBOX_GRPC_TLS_CA, _CERT and _KEY set (paths to PEM files), both
// directions use mutual TLS: each side presents its certificate and verifies
// the peer's against the CA; TLS 1.3 is the minimum; a peer without a valid
// certificate from that CA is refused during the handshake. With none set the
// caller gets nullopt: `osb server` and `osb worker` then refuse to start
// unless --insecure-grpc is given. Setting only some is an error.
//
// Roles. Every certificate carries exactly one role as an organizational
// unit in its subject: OU=osb-control-plane or OU=osb-worker (written by
// scripts/gen-grpc-certs.sh and by `osb dev`, see grpc_certs.h). Each side
// checks the PEER's role on every connection and call:
//   * a control plane's gRPC server serves only callers with a worker
//     certificate, and dials only workers presenting a worker certificate;
//   * a worker's gRPC server serves only callers with a control-plane
//     certificate, and registers only with a server presenting one.
// So a worker's certificate (e.g. from a compromised worker host) cannot
// drive another worker (Exec, ListSandboxes, …). A worker's id is its
// certificate's common name (see PeerCommonName).
//
// Listeners built with AddGrpcListener never share their port
// (GRPC_ARG_ALLOW_REUSEPORT = 0): a second process on the same port fails to
// start instead of silently splitting the traffic.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
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

enum class GrpcRole { kControlPlane, kWorker };

// "osb-control-plane" / "osb-worker": the OU value naming the role.
const char* RoleUnit(GrpcRole role);

// nullopt = no TLS configured. Error if only some variables are set or a file
// cannot be read (the message names the variable and path, never contents).
Result<std::optional<GrpcTlsMaterial>> GrpcTlsFromEnvironment(
    const std::function<const char*(const char*)>& getenv = nullptr);
Result<GrpcTlsMaterial> LoadGrpcTls(const GrpcTlsFiles& files);

// kInvalidArgument (naming OPENSANDBOX_GRPC_TLS_CERT and the fix) unless our
// own certificate carries `role`: catches a swapped certificate at startup
// rather than as refused calls later.
Status CheckOwnRole(const GrpcTlsMaterial& tls, GrpcRole role);

// Server side: requires and verifies a client certificate from the CA whose
// role is `peer` (PERMISSION_DENIED on every call otherwise), TLS 1.3
// minimum. nullopt = plaintext.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const std::optional<GrpcTlsMaterial>& tls, GrpcRole peer);

// Adds a listening port with MakeServerCredentials(tls, peer) and disables
// SO_REUSEPORT on the builder's listeners. Servers and channels from here use
// a fixed 2 MiB HTTP/2 stream window (no BDP probing): memory per stream is
// bounded whatever the peer does (see the .cpp).
void AddGrpcListener(grpc::ServerBuilder& builder, const std::string& address,
                     const std::optional<GrpcTlsMaterial>& tls, GrpcRole peer, int* selected_port);

// Client side: presents our certificate, verifies the server against the CA
// (its name against `target`'s host) and that its role is `peer`; TLS 1.3
// minimum. nullopt = plaintext.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const std::optional<GrpcTlsMaterial>& tls, GrpcRole peer);

// The subject common name of a PEM certificate; nullopt if unreadable.
std::optional<std::string> CertificateCommonName(const std::string& cert_pem);
// The role of a PEM certificate; nullopt if it has none, two, or is unreadable.
std::optional<GrpcRole> CertificateRole(const std::string& cert_pem);

// The verified client certificate's common name of a call, or nullopt for a
// plaintext (unauthenticated) channel. Under mutual TLS a worker's id is its
// certificate's CN, so one worker cannot act as another.
std::optional<std::string> PeerCommonName(const grpc::ServerContext& context);
// The verified client certificate's role; nullopt for plaintext or no role.
std::optional<GrpcRole> PeerRole(const grpc::ServerContext& context);

}  // namespace osb::proto
