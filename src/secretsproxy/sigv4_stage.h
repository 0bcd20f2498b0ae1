// The aws-sigv4 signing stage: the sandbox signs its AWS requests with a
// sealed token as AWS_SECRET_ACCESS_KEY (its AWS_ACCESS_KEY_ID is the real
// one); the proxy verifies that signature and signs the request again with
// the real secret access key. A signature computed with a token never
// leaves the proxy, and the real key never enters the sandbox.
//
// For a request that carries SigV4 (an `Authorization: AWS4-HMAC-SHA256`
// header or a presigned query string) whose Credential names the access
// key id of one of the session's aws-sigv4 secrets:
//   1. the secret must be allowed toward the target host (else 403), and
//      the Credential's region/service must be the secret's when it names
//      them (else 403);
//   2. the signing date (x-amz-date / X-Amz-Date) must be within 15 minutes
//      of the proxy's clock (header form), or, for a presigned URL, inside
//      [date - 15 min, date + X-Amz-Expires] (else 403): a token-signed
//      request captured today cannot be replayed days later;
//   3. the sandbox's signature must verify, over the request as it arrived,
//      with the key derived from the TOKEN (else 403, audited): nothing
//      signed elsewhere, and nothing signed for another method, path, query
//      or signed header, is ever re-signed;
//   4. a sealed session token (x-amz-security-token header or
//      X-Amz-Security-Token parameter) is replaced by the real one;
//   5. the request is signed again with the real key, keeping the client's
//      date, region, service, signed headers and payload hash; only the
//      Signature changes (header or X-Amz-Signature);
//   6. a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body is re-signed chunk by chunk
//      while it streams (SigV4Result::chunks, sigv4.h ChunkResigner).
// Payload hash: x-amz-content-sha256 when the request has it (a hex hash,
// UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER pass as signed; the
// upstream checks the body against a hex hash), UNSIGNED-PAYLOAD for an S3
// presigned URL, otherwise SHA-256 of the body: then the stage asks for the
// buffered body (SigV4Result::needs_body) and is run again with it.
// A SigV4 request with an access key id that no aws-sigv4 secret has is
// forwarded unchanged unless its signature verifies with one of the
// session's tokens (then 403: a token-signed request never leaves).
// Unsupported: the Date header instead of x-amz-date (400 naming
// x-amz-date), STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER and ECDSA (SigV4a)
// payloads (400 naming x-amz-content-sha256).
// Refusal reasons are fixed texts naming the field; never a key, a token or
// a signature.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "secretsproxy/http_message.h"
#include "secretsproxy/request_stages.h"
#include "secretsproxy/sigv4.h"

namespace osb::secretsproxy {

// One aws-sigv4 secret of the session, as the stage needs it (views into
// the session snapshot's material; the stage copies nothing secret except
// into derived keys it wipes).
struct SigV4Secret {
  std::string_view name;                 // for the audit line
  std::string_view access_key_id;        // real, the sandbox has it too
  std::string_view token;                // the sealed token the sandbox signs with
  std::string_view secret_access_key;    // real
  std::string_view session_token_token;  // sealed token standing for the session token ("" = none)
  std::string_view session_token;        // real ("" = none)
  bool enabled = false;                  // may be used toward the request's target
  // The secret's optional region/service: a request whose Credential scope
  // names another one is refused (403); "" = any.
  std::string_view region = {};
  std::string_view service = {};
};

struct SigV4Result {
  bool signed_request = false;   // the request was re-signed (head rewritten)
  bool needs_body = false;       // run again with the whole body (payload hash = SHA-256(body))
  std::string secret_name;       // the secret that signed (audit)
  // Set for an aws-chunked STREAMING-AWS4-HMAC-SHA256-PAYLOAD body: the
  // body must go through it on its way upstream.
  std::unique_ptr<sigv4::ChunkResigner> chunks;
};

// The stage. `now_unix` is the proxy's clock (seconds, UTC). `body` is the
// whole request body when the caller buffered it after a needs_body answer.
// On a refusal the head is unchanged.
StageResult ResignSigV4(RequestHead* head, std::span<const SigV4Secret> secrets, int64_t now_unix,
                        const std::string* body, SigV4Result* out);

}  // namespace osb::secretsproxy
