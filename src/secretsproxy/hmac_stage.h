// The hmac signing stage (signing_stage.h): a secret of kind "hmac" signs
// requests with a key the sandbox never sees.
//
// The sandbox sends its token where the signature goes: in the header the
// material names (`header`, e.g. "X-Signature: osb_sealed_..."; the token
// may stand anywhere in the value, e.g. "sha256=osb_sealed_..."). When that
// header carries the token of a usable hmac secret, the proxy computes
//     signature = HMAC(hash, key, message)
// over the request as it is sent upstream and sets the header's whole
// value to  prefix + hex|base64(signature).  The message is the template
// `message` (default "{body}") with
//     {method}     the request method
//     {path}       the request target's path (no query), as sent
//     {query}      the query string without "?" ("" if none), as sent
//     {host}       the target host (CONNECT / SNI name)
//     {timestamp}  the value of the request header `timestampHeader`
//                  (400 when the request lacks it)
//     {body}       the body as sent (tokens of value secrets substituted)
// A template with {body} makes the proxy read the whole body first
// (ProxyLimits::body_buffer_limit: 413 beyond; the sandbox's body budget:
// 503). Without the header, or with a token of an hmac secret this request
// may not use (allowedHosts / allowedRequests), nothing is signed and the
// token passes sealed (audited as withheld).
#pragma once

#include "secretsproxy/signing_stage.h"

namespace osb::secretsproxy {

class HmacStage final : public SigningStage {
 public:
  std::string_view name() const override { return "hmac"; }
  SecretKind kind() const override { return SecretKind::kHmac; }
  boost::asio::awaitable<StageResult> OnHead(SigningCall& call, std::unique_ptr<SigningAction>* action) const override;
};

const SigningStage* HmacSigningStage();

// The signature header value for `material` over the given parts (pure;
// exposed for tests and the benchmark). nullopt if a needed part is missing
// (*missing names it).
struct HmacParts {
  std::string_view method, path, query, host, timestamp, body;
};
std::optional<std::string> HmacHeaderValue(const SecretMaterial& material, const HmacParts& parts,
                                           std::string* missing);

}  // namespace osb::secretsproxy
