// THE list of signing stages (signing_stage.h), in the order they run.
// Adding a stage = one line here (and its files in CMakeLists.txt).
#include "secretsproxy/signing_stage.h"
#include "secretsproxy/sigv4_signing_stage.h"

#include "secretsproxy/hmac_stage.h"
#include "secretsproxy/oauth_stage.h"

namespace osb::secretsproxy {

const std::vector<const SigningStage*>& SigningStages() {
  static const std::vector<const SigningStage*> stages = {
      HmacSigningStage(),
      OAuthSigningStage(),
      &SigV4Stage(),
  };
  return stages;
}

}  // namespace osb::secretsproxy
