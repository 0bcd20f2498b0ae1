// Signing stages (issue 16): the extension point where secrets that SIGN
// (hmac, aws-sigv4) or INJECT (oauth2-refresh) act on a request. A
// non-value secret's token is never substituted by its material; instead,
// for every HTTPS request whose session holds a secret of a stage's kind,
// the stage sees the request after the head stages (session, target, Host
// agreement, allowlist, framing, token substitution: request_pipeline.h)
// and before anything is serialized upstream, and may
//   - edit the head (headers, request target): e.g. replace the signature
//     the sandbox computed with the token as key by the real signature,
//     put a fresh access token where the token was;
//   - ask for the whole body (Body::kWhole): it is read (tokens of value
//     secrets already substituted), bounded by ProxyLimits::body_buffer_limit
//     (413 beyond) and the sandbox's body budget (503), and given to
//     OnBody before the head is written — for signatures over the body;
//   - or transform the body as a stream (Body::kStream, bounded memory for
//     any size: e.g. re-signing aws-chunked chunk signatures): each piece,
//     after token substitution, goes through Feed/Finish on its way
//     upstream; a length-preserving transform keeps the client's framing,
//     any other is re-framed chunked;
//   - refuse the request (a StageResult with a status): the one refusal
//     path answers and audits it.
//
// Contract for a stage (the promise of DESIGN.md "Secrets proxy"):
//   - nothing derived from a secret (a key, a signature made with it, an
//     access token) may reach the client: the response scrubber only knows
//     what the session snapshot holds (values, secret material fields,
//     SessionRegistry::SetDerivedValues). A refusal's reason is a fixed text.
//   - use a secret only when call.usable lists it: that is the per-secret
//     allowedHosts and allowedRequests verdict for this request.
//   - never throw on the data path; never co_await inside a condition
//     (GCC 12, see HELPERS.md).
//
// How to add a stage: implement SigningStage in its own file pair and add
// ONE line to the list in signing_stages.cpp (SigningStages()). The
// pipeline calls the stages in that order; each is called only when the
// session has a secret of its kind() (for an aws-sigv4 stage, e.g.,
// call.usable holds the indexes of the usable aws-sigv4 secrets).
//
// Thread safety: a SigningStage is shared by every connection (stateless or
// internally synchronized); a SigningAction belongs to one request.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which needs std::exchange
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/secret_kinds.h"
#include "secretsproxy/request_stages.h"

namespace osb::secretsproxy {

struct RequestContext;
struct ProxyLimits;
class SessionRegistry;
class UpstreamDialer;
class OAuthTokenCache;

// What signing stages share across connections (owned by the Proxy; tests
// build their own). Any member may be null when the proxy has none.
struct SigningEnv {
  const ProxyLimits* limits = nullptr;
  // To call out (an OAuth token endpoint): same DNS, address policy and
  // verified TLS as any upstream.
  UpstreamDialer* dialer = nullptr;
  // Not const: a stage may publish derived values (SetDerivedValues).
  SessionRegistry* sessions = nullptr;
  OAuthTokenCache* oauth = nullptr;
  // The clock (tests move it).
  std::function<std::chrono::system_clock::time_point()> now = [] { return std::chrono::system_clock::now(); };
};

// One request as a stage sees it.
struct SigningCall {
  RequestContext& ctx;  // ctx.head is editable; ctx.session, ctx.target, ctx.rec
  SigningEnv& env;
  // Indexes into ctx.session->secrets() of this stage's kind that may be
  // used for this request (allowedHosts + allowedRequests agree).
  std::vector<size_t> usable;
  // Indexes of this stage's kind that may NOT be used for it (their
  // tokens must stay sealed; the pipeline audits the ones it sees).
  std::vector<size_t> withheld;
  // Secret names this request used: appended by the stage, audited.
  std::vector<std::string>* used_names = nullptr;
};

// What a stage does with one request after its head (per request).
class SigningAction {
 public:
  enum class Body { kUntouched, kWhole, kStream };
  virtual ~SigningAction() = default;
  virtual Body body() const { return Body::kUntouched; }
  // Body::kWhole: the complete body as it will be sent (tokens of value
  // secrets substituted), before the head is serialized. May edit both
  // (Content-Length is set after from body->size()).
  virtual StageResult OnBody(RequestContext& ctx, std::string* body) {
    (void)ctx;
    (void)body;
    return {};
  }
  // Body::kStream: one piece (after token substitution) -> *out. A refusal
  // after the head was sent ends the connection (the upstream sees a
  // truncated body).
  virtual StageResult Feed(std::string_view in, std::string* out) {
    out->append(in);
    return {};
  }
  virtual StageResult Finish(std::string* out) {
    (void)out;
    return {};
  }
  // Body::kStream: true when Feed/Finish emit exactly as many bytes as they
  // get (the client's Content-Length framing is kept).
  virtual bool length_preserving() const { return true; }
};

class SigningStage {
 public:
  virtual ~SigningStage() = default;
  virtual std::string_view name() const = 0;
  virtual SecretKind kind() const = 0;
  // After the head stages, before the head is serialized. Leave *action
  // null when the request is not this stage's business (or the head edit
  // was all). A non-ok result refuses the request.
  virtual boost::asio::awaitable<StageResult> OnHead(SigningCall& call,
                                                     std::unique_ptr<SigningAction>* action) const = 0;
};

// THE list of signing stages, in the order they run (signing_stages.cpp).
const std::vector<const SigningStage*>& SigningStages();

}  // namespace osb::secretsproxy
