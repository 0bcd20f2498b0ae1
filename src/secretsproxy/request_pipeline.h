// The request path as an ordered chain of small stages over one
// RequestContext (DESIGN.md "Secrets proxy"):
//
//   session -> SNI -> method -> target -> Host agreement -> allowlist ->
//   framing -> substitution (or the plaintext guard) -> head fix-ups
//       (these are the synchronous head stages below, kHeadStages)
//   -> 100-continue -> request body -> upstream (dialer: DNS, address
//      policy, connect, TLS) -> forward -> response head (scrub)
//       (the asynchronous stages, in exchange.cpp)
//   -> response body relay (decode + scrub) or tunnel -> audit
//
// SIGNING STAGES (issue 16, signing_stage.h) are the extension point for
// secrets that sign or inject (hmac, aws-sigv4, oauth2-refresh). They run
// as the first asynchronous stage ("Sign"), i.e. after every head stage
// above (session, SNI/Host agreement, allowlist, framing, substitution,
// head fix-ups) and before the 100-continue, the body and anything sent
// upstream. Each gets the session snapshot, the editable head, the target
// host:port, the indexes of its kind's secrets usable for this request, and
// may ask for the whole body (signed before the head is serialized) or a
// streaming body transform. Register a stage by adding one line to
// signing_stages.cpp. Plain HTTP never reaches them (a token there is
// refused by the plaintext guard).
//
// allowedRequests (per secret {host, methods, pathPrefix}) narrow where a
// secret may be used: SubstituteOrGuard substitutes only secrets whose
// rules match the method and path; a token of a secret whose rules do not
// match passes sealed and is audited ("request_not_allowed" naming the
// rules), or, for a secret with refuse_disallowed, the request is refused
// with 403 when its token occurs in the head (or the buffered body).
//
// Every stage returns a StageResult: ok() = continue, otherwise the status
// and fixed reason text of the refusal. The exchange has exactly one
// refusal path (Refuse) that answers, audits and counts; a stage never
// writes to the client itself. Head stages are pure functions of the
// context (no I/O), so each is testable alone and the chain is a plain
// array of function pointers (no allocation, no std::function).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "secretsproxy/audit.h"
#include "secretsproxy/content_coding.h"
#include "secretsproxy/http_message.h"
#include "secretsproxy/request_stages.h"
#include "secretsproxy/session_registry.h"
#include "secretsproxy/signing_stage.h"
#include "secretsproxy/stream_replacer.h"

namespace osb::secretsproxy {

enum class ExchangeMode {
  kTls,               // MITM'd TLS; fixed target from CONNECT or SNI
  kExplicitPlain,     // explicit proxy port, absolute-form http:// requests
  kTransparentPlain,  // redirected port 80, target from Host
};

// What the listener knows about the connection before the first request.
struct ExchangeOptions {
  ExchangeMode mode = ExchangeMode::kTls;
  std::optional<Target> fixed_target;  // kTls
  std::string initial_bytes;           // already read from the client
  std::string source_ip;
  bool sni_mismatch = false;           // client's SNI disagrees with CONNECT: 421
};

// Status for "the client went away": audited, nothing is answered.
inline constexpr int kClientGone = 499;

// One request, from its parsed head to its audit line. Owned by the
// connection and reused from request to request (strings and vectors keep
// their capacity); Begin() resets the per-request part.
struct RequestContext {
  RequestContext(const ExchangeOptions& conn_options, const SessionRegistry& registry, uint16_t http_port)
      : conn(conn_options), sessions(registry), transparent_http_port(http_port) {}

  // Fixed for the connection.
  const ExchangeOptions& conn;
  const SessionRegistry& sessions;
  uint16_t transparent_http_port;

  // The request.
  RequestHead head;
  std::chrono::steady_clock::time_point start;
  AuditRecord rec;
  std::shared_ptr<const SessionSnapshot> session;
  Target target;
  BodyFraming framing;
  bool plaintext = false;  // no TLS toward the client: never substitute
  bool client_is_11 = false;
  bool client_close = false;
  bool upgrade = false;
  bool has_body = false;
  bool expect_continue = false;
  // Content-Encoding of a request body that tokens may be substituted into:
  // decoded, substituted and re-encoded in the same codings.
  std::vector<Coding> request_codings;
  // tokens -> values for the secrets that may go to `target` (TLS only).
  std::optional<StreamReplacer> substitute;
  // Tokens of secrets that may not go to `target` pass sealed; which ones
  // were seen is audited (TLS only).
  std::optional<WithheldTokens> withheld;
  // EnabledFor narrowed by allowedRequests for this request (what
  // `substitute` uses); `enabled` below is the per-host cache.
  std::vector<bool> request_enabled;
  // Signing stages' per-request actions (signing_stage.h) and the secret
  // names they used (audited).
  std::vector<std::unique_ptr<SigningAction>> signing;
  std::vector<std::string> signed_names;
  // The request target's path (no query), for allowedRequests.
  std::string_view Path() const;
  // Path() before substitution, kept for the audit (when any_rules).
  std::string request_path;

  // Which secrets may be substituted toward enabled_host; recomputed only
  // when the session snapshot or the target host changes.
  std::shared_ptr<const SessionSnapshot> enabled_session;
  std::string enabled_host;
  uint16_t enabled_port = 0;
  std::vector<bool> enabled;
  bool any_rules = false;    // a secret of enabled_session has allowedRequests
  bool any_enabled = false;  // of request_enabled (this request)
  // The Accept-Encoding offered upstream for the client's last value (a
  // keep-alive client sends the same one each time: computed once).
  bool accept_cached = false;
  std::optional<std::string> accept_in;
  std::string accept_out;

  void Begin();
  std::vector<std::string> MatchedSecretNames() const;
};

using HeadStage = StageResult (*)(RequestContext&);

StageResult FindSession(RequestContext& c);        // 403 unknown source address
StageResult CheckSni(RequestContext& c);           // 421 SNI disagrees with CONNECT
StageResult CheckMethodStage(RequestContext& c);   // 405 TRACE/TRACK/CONNECT
StageResult FindTarget(RequestContext& c);         // fixed / absolute URL / Host (400, 421)
StageResult CheckHostStage(RequestContext& c);     // TLS: Host and URL name the target (421)
StageResult CheckAllowlist(RequestContext& c);     // 403 not on the egress allowlist
StageResult AnalyzeFraming(RequestContext& c);     // 400 ambiguous framing
StageResult SubstituteOrGuard(RequestContext& c);  // TLS: tokens -> values (400); plain: 403 on a token
StageResult RequestCoding(RequestContext& c);      // a content-coded body to substitute into (415)
StageResult NegotiateCodings(RequestContext& c);   // Accept-Encoding: only codings the proxy decodes
StageResult PrepareForward(RequestContext& c);     // hop-by-hop fields, HTTP/1.0 -> 1.1

inline constexpr HeadStage kHeadStages[] = {
    FindSession, CheckSni, CheckMethodStage, FindTarget, CheckHostStage,
    CheckAllowlist, AnalyzeFraming, SubstituteOrGuard, RequestCoding, NegotiateCodings, PrepareForward,
};

// All field values named `name`, joined with ", " (one list, RFC 9110 5.3);
// nullopt when there is none.
std::optional<std::string> JoinedField(const std::vector<HeaderField>& fields, std::string_view name);

// allowedRequests with refuse_disallowed: the 403 for a request whose head
// or buffered body (scanned into c.withheld) carries the token of a secret
// whose rules do not match it; nullopt otherwise.
std::optional<StageResult> RefusedByRule(const RequestContext& c);

// Runs kHeadStages in order; stops at the first refusal.
StageResult RunHeadStages(RequestContext& c);

}  // namespace osb::secretsproxy
