// The gRPC PKI `osb dev` makes for itself, so its control plane and its
// worker talk mutual TLS with no setup: in `dir` (made 0700)
//   ca.crt, ca.key                     a CA of its own (P-256, 10 years)
//   control-plane.crt, .key            OU=osb-control-plane, CN=control-plane
//   worker.crt, worker.key             OU=osb-worker, CN=dev-worker
// Keys are written 0600 (temp file + rename). Made on first start and reused
// on every later one (the worker's id is its certificate's CN, so it stays
// the same across restarts). The layout is scripts/gen-grpc-certs.sh's, so
// more workers can join `osb dev --no-worker` with
//   scripts/gen-grpc-certs.sh DIR worker NAME
// Certificates name localhost, 127.0.0.1 and ::1.
#pragma once

#include <string>

#include "common/result.h"
#include "proto/tls_credentials.h"

namespace osb::proto {

struct DevGrpcTls {
  GrpcTlsMaterial control_plane;
  GrpcTlsMaterial worker;
  bool created = false;  // true when this call made them
};

Result<DevGrpcTls> EnsureDevGrpcTls(const std::string& dir);

// A certificate for `name` with `role`, signed by the CA in ca_cert_pem /
// ca_key_pem, with a fresh P-256 key. For osb dev and for tests.
Result<GrpcTlsMaterial> IssueGrpcCertificate(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                                             GrpcRole role, const std::string& name);
// A fresh self-signed CA: {cert_pem, key_pem}.
Result<std::pair<std::string, std::string>> MakeGrpcCa();

}  // namespace osb::proto
