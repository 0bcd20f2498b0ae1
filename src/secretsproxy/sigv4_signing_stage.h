// The aws-sigv4 SigningStage (signing_stage.h): adapts the pure re-signing
// stage of sigv4_stage.h to the pipeline. For a session with aws-sigv4
// secrets it runs ResignSigV4 on the head (the usable secrets enabled, the
// withheld ones known so a request signed under their access key id is
// refused, never forwarded with a token signature); when the payload hash
// is SHA-256 of the body it asks for the whole body (Body::kWhole, bounded
// by the proxy's body budget, 413 beyond) and signs in OnBody; an aws-chunked
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD body is re-signed chunk by chunk as it
// streams (Body::kStream, length-preserving: the client's Content-Length
// stays). The secret's name goes to the audit line.
#pragma once

#include "secretsproxy/signing_stage.h"

namespace osb::secretsproxy {

class SigV4SigningStage final : public SigningStage {
 public:
  std::string_view name() const override { return "aws-sigv4"; }
  SecretKind kind() const override { return SecretKind::kAwsSigV4; }
  boost::asio::awaitable<StageResult> OnHead(SigningCall& call,
                                             std::unique_ptr<SigningAction>* action) const override;
};

const SigningStage& SigV4Stage();

}  // namespace osb::secretsproxy
