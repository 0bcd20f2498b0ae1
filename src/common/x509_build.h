// Small steps of building an X.509 certificate with OpenSSL, shared by the
// proxy's CA (leaf certificates per host) and osb dev's gRPC certificates.
// Each returns false when OpenSSL refuses; the caller turns that into its
// own error. Thread-safe (no shared state).
#pragma once

#include <openssl/x509.h>

namespace osb {

// A random positive 127-bit serial number (RFC 5280: unique per issuer, at
// most 20 octets, positive).
bool SetRandomSerial(X509* cert);

// Adds the extension `nid` with OpenSSL's config-string `value` (e.g.
// "critical,CA:TRUE"), with `issuer` as the context for authority key ids.
bool AddX509Extension(X509* cert, X509* issuer, int nid, const char* value);

}  // namespace osb
