#include "secretsproxy/exchange.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/secure_memory.h"
#include "secretsproxy/body_relay.h"
#include "secretsproxy/content_decoder.h"
#include "secretsproxy/content_encoder.h"
#include "secretsproxy/memory_budget.h"
#include "secretsproxy/websocket_scrubber.h"

namespace osb::secretsproxy {
namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

const char* StatusText(int s) {
  switch (s) {
    case 100: return "Continue";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 421: return "Misdirected Request";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

HeadLimits ToHeadLimits(const ProxyLimits& l) {
  return HeadLimits{l.max_line_bytes, l.max_header_bytes, l.max_header_fields};
}

template <class Head, class Parse>
asio::awaitable<HeadRead> ReadHeadImpl(ByteStream& s, std::string& buf, Head* head, const ProxyLimits& limits,
                                       Millis first_byte_timeout, std::string* reason, bool consume, Parse parse) {
  const HeadLimits hl = ToHeadLimits(limits);
  std::optional<Clock::time_point> deadline;
  while (true) {
    if (!buf.empty()) {
      if (!deadline) deadline = Clock::now() + limits.header_timeout;
      ParseOutcome r = parse(buf, hl, head);
      if (r.status == ParseStatus::kComplete) {
        if (consume) buf.erase(0, r.consumed);
        co_return HeadRead::kOk;
      }
      if (r.status == ParseStatus::kBad) {
        *reason = r.reason;
        co_return HeadRead::kBad;
      }
      if (r.status == ParseStatus::kTooLarge) {
        *reason = r.reason;
        co_return HeadRead::kTooLarge;
      }
    }
    Millis timeout = first_byte_timeout;
    if (deadline) {
      timeout = std::chrono::duration_cast<Millis>(*deadline - Clock::now());
      if (timeout.count() <= 0) {
        *reason = "timed out reading header";
        co_return HeadRead::kTimeout;
      }
    }
    // Read straight into buf's tail. Idle connections wait here: keep that
    // wait's buffer small.
    const size_t have = buf.size();
    buf.resize(have + (have == 0 ? 2048 : kReadChunk));
    error_code ec;
    const size_t n = co_await s.ReadSome(buf.data() + have, buf.size() - have, timeout, ec);
    buf.resize(have + n);
    if (n == 0) {
      if (ec == asio::error::timed_out) {
        *reason = "timed out reading header";
        co_return HeadRead::kTimeout;
      }
      if (buf.empty()) co_return HeadRead::kEof;
      *reason = "connection closed inside a header";
      co_return HeadRead::kError;
    }
  }
}

asio::awaitable<HeadRead> ReadResponseHeadFrom(ByteStream& s, std::string& buf, ResponseHead* head,
                                           const ProxyLimits& limits, std::string* reason) {
  co_return co_await ReadHeadImpl(s, buf, head, limits, limits.idle_timeout, reason, true, ParseResponseHead);
}

// Copies bytes one way until either side ends, then closes both. With a
// rewriter (websocket frames: scrubbed toward the client, substituted toward
// the upstream) every byte goes through it; a frame it cannot rewrite ends
// the tunnel (fail closed).
asio::awaitable<void> Pump(std::shared_ptr<ByteStream> from, std::shared_ptr<ByteStream> to, Millis idle,
                           std::shared_ptr<WebSocketRewriter> scrubber) {
  std::string buf(kReadChunk, '\0');
  std::string out;
  while (true) {
    error_code ec;
    const size_t n = co_await from->ReadSome(buf.data(), buf.size(), idle, ec);
    if (n == 0) break;
    std::string_view bytes(buf.data(), n);
    if (scrubber) {
      out.clear();
      if (!scrubber->Feed(bytes, &out)) break;
      bytes = out;
    }
    co_await to->WriteAll(bytes, idle, ec);
    if (scrubber) SecureWipe(out);  // substituted client frames hold real values
    if (ec) break;
  }
  from->Close();
  to->Close();
}


// Memory a decoder for `codings` may allocate with windows of 2^window_log
// (content_decoder.h: zstd <= window + ~200 KiB, br <= window + 4 MiB,
// gzip/deflate ~45 KiB), charged to the sandbox's budget.
size_t DecoderCost(const std::vector<Coding>& codings, int window_log) {
  size_t cost = 0;
  for (Coding c : codings) {
    if (c == Coding::kZstd) {
      cost += (size_t{1} << window_log) + (256 << 10);
    } else if (c == Coding::kBrotli) {
      cost += (size_t{1} << window_log) + (4 << 20);
    } else {
      cost += 64 << 10;
    }
  }
  return cost;
}

// An encoder's state (content_encoder.h), charged likewise.
size_t EncoderCost(const std::vector<Coding>& codings) {
  size_t cost = 0;
  for (Coding c : codings) cost += (c == Coding::kBrotli || c == Coding::kZstd) ? (3 << 20) : (320 << 10);
  return cost;
}

// The largest history window (8 MiB, the limit RFC 9659 sets for HTTP, else
// 1 MiB) whose decoder memory fits the sandbox's budget; nullopt when not
// even the smaller one does.
std::optional<DecoderOptions> ChargeDecoder(BodyBudgetLease& lease, const std::shared_ptr<const SessionSnapshot>& s,
                                            size_t limit, const std::vector<Coding>& codings) {
  for (int log : {23, 20}) {
    if (lease.TryCharge(s, limit, DecoderCost(codings, log))) {
      DecoderOptions o;
      o.max_window_log = log;
      return o;
    }
  }
  return std::nullopt;
}

// Feeds `in` to the decoder and writes everything it yields, one bounded
// piece at a time (a decompression bomb costs time, never memory).
enum class Decoded { kOk, kBadCoding, kWriteFailed };
// `withheld` (request bodies): the decoded bytes are where a withheld token
// is visible, so they are scanned for the audit line here.
asio::awaitable<Decoded> WriteDecoded(ContentDecoder& d, std::string_view in, bool last, BodyWriter& w,
                                      std::string& scratch, WithheldTokens* withheld = nullptr) {
  d.Feed(in);
  while (true) {
    scratch.clear();
    const DecodeStatus st = d.Read(kReadChunk, &scratch);
    if (st == DecodeStatus::kError) co_return Decoded::kBadCoding;
    if (withheld != nullptr) withheld->Scan(scratch);
    const bool written = co_await w.Write(scratch);
    if (!written) co_return Decoded::kWriteFailed;
    if (st == DecodeStatus::kNeedInput) break;
  }
  if (last && !d.Finish()) co_return Decoded::kBadCoding;  // truncated
  co_return Decoded::kOk;
}

// Decodes `in` only to look for withheld tokens (the body itself is forwarded
// unchanged). False once the bytes do not decode: the scan stops there.
bool ScanDecoded(ContentDecoder& d, std::string_view in, bool last, WithheldTokens& withheld, std::string& scratch) {
  d.Feed(in);
  while (true) {
    scratch.clear();
    const DecodeStatus st = d.Read(kReadChunk, &scratch);
    if (st == DecodeStatus::kError) return false;
    withheld.Scan(scratch);
    if (st == DecodeStatus::kNeedInput) break;
  }
  return !last || d.Finish();
}

// A strong ETag named the coded representation; the identity body the
// client gets is equivalent, not byte-identical: W/ (RFC 9110 8.8.1).
void WeakenETag(std::vector<HeaderField>* fields) {
  for (auto& f : *fields) {
    if (EqualsIgnoreCase(f.name, "etag") && f.value.rfind("W/", 0) != 0) f.value.insert(0, "W/");
  }
}

constexpr std::string_view kBudgetExhausted = "the sandbox's memory budget for request bodies is exhausted";

// One client connection: the loop over requests, the asynchronous stages of
// one request, the relays and the single refusal/audit path.
class Exchange {
 public:
  Exchange(ExchangeEnv env, std::shared_ptr<ByteStream> client, ExchangeOptions options)
      : env_(env),
        limits_(*env.limits),
        client_(std::move(client)),
        opt_(std::move(options)),
        ctx_(opt_, *env.sessions, env.transparent_http_port) {
    cbuf_ = std::move(opt_.initial_bytes);
  }
  asio::awaitable<void> Run();

  using AsyncStage = asio::awaitable<StageResult> (Exchange::*)();
  // The asynchronous stages, in order (after the head stages).
  asio::awaitable<StageResult> Sign();               // signing stages (signing_stage.h)
  asio::awaitable<StageResult> SendContinue();       // 100 Continue when the client waits for it
  asio::awaitable<StageResult> ReadRequestBody();    // plan; buffer + substitute or scan
  asio::awaitable<StageResult> ConnectUpstream();    // reuse, or dial (DNS, address policy, TLS)
  asio::awaitable<StageResult> Forward();            // head (+ buffered body), streamed body
  asio::awaitable<StageResult> ReadResponseHead();   // skip 1xx, framing, scrub the head
  asio::awaitable<StageResult> PlanResponse();       // framing toward the client; buffer + scrub

 private:
  // Returns false when the client connection must end.
  asio::awaitable<bool> One();
  // The one refusal path: answers (unless the client is gone) and leaves
  // the audit to One(). Always ends the connection.
  asio::awaitable<bool> Refuse(StageResult st);
  // Relays (each its own coroutine).
  asio::awaitable<StageResult> RelayRequestBody();
  asio::awaitable<bool> SendResponse();
  // `head`: the response head, written together with the body's first
  // bytes when they are already buffered (empty: the head was sent).
  asio::awaitable<bool> RelayResponseBody(std::string head);
  asio::awaitable<bool> Tunnel();
  // Writes the request's audit line and counts it, once.
  void Audit();
  // An upstream misbehaved: counted, then refused like any other stage.
  StageResult UpstreamFault(int status, std::string reason) {
    env_.metrics->upstream_errors++;
    return {status, std::move(reason)};
  }
  // Drops the copies of the request that hold substituted values.
  void WipeSubstituted();

  ExchangeEnv env_;
  const ProxyLimits& limits_;
  std::shared_ptr<ByteStream> client_;
  ExchangeOptions opt_;
  RequestContext ctx_;
  AuditRecord& rec() { return ctx_.rec; }
  std::string cbuf_;  // client bytes read but not consumed
  std::shared_ptr<ByteStream> upstream_;
  std::optional<Target> upstream_target_;
  std::string ubuf_;  // upstream bytes read but not consumed
  bool audited_ = false;
  bool sent_upstream_ = false;
  bool wiped_ = false;
  // Request body.
  BodyPlan plan_;
  std::optional<BodyReader> reader_;
  std::string body_;  // buffered request body
  BodyBudgetLease body_lease_;  // body_'s charge to the sandbox's budget
  BodyBudgetLease req_coding_lease_;  // decoder + encoder of a content-coded request body
  std::string wire_;  // serialized request head (+ buffered body)
  // Response.
  ResponseHead resp_;
  BodyFraming resp_framing_;
  bool upstream_close_ = false;
  bool scrubbing_ = false;
  std::optional<StreamReplacer> scrub_;  // values -> tokens
  std::shared_ptr<WebSocketRewriter> ws_;     // server frames, scrubbed
  std::shared_ptr<WebSocketRewriter> ws_up_;  // client frames, tokens substituted
  BodyPlan rplan_;
  bool close_after_ = false;
  std::optional<BodyReader> rreader_;
  std::string rbody_;  // buffered response body
  BodyBudgetLease rbody_lease_;
  std::unique_ptr<ContentDecoder> decoder_;  // response Content-Encoding, undone before scrubbing
  BodyBudgetLease resp_coding_lease_;
};

constexpr Exchange::AsyncStage kAsyncStages[] = {
    &Exchange::Sign,    &Exchange::SendContinue,     &Exchange::ReadRequestBody, &Exchange::ConnectUpstream,
    &Exchange::Forward, &Exchange::ReadResponseHead, &Exchange::PlanResponse,
};

// The signing env of an ExchangeEnv without one (tests): stages get the
// limits only.
SigningEnv& DefaultSigningEnv() {
  static SigningEnv env;
  return env;
}

SigningAction::Body BodyNeed(const std::vector<std::unique_ptr<SigningAction>>& actions, bool* preserving) {
  SigningAction::Body need = SigningAction::Body::kUntouched;
  *preserving = true;
  for (const auto& a : actions) {
    if (a->body() == SigningAction::Body::kWhole) need = SigningAction::Body::kWhole;
    if (a->body() == SigningAction::Body::kStream) {
      if (need == SigningAction::Body::kUntouched) need = SigningAction::Body::kStream;
      *preserving = *preserving && a->length_preserving();
    }
  }
  return need;
}

asio::awaitable<bool> Exchange::One() {
  std::string reason;
  const HeadRead hr = co_await ReadRequestHead(*client_, cbuf_, &ctx_.head, limits_, limits_.idle_timeout, &reason);
  if (hr == HeadRead::kEof || hr == HeadRead::kTimeout || hr == HeadRead::kError) co_return false;
  ctx_.Begin();
  audited_ = sent_upstream_ = wiped_ = false;
  StageResult st;
  if (hr == HeadRead::kBad) {
    st = {400, std::move(reason)};
  } else if (hr == HeadRead::kTooLarge) {
    st = {431, std::move(reason)};
  } else {
    rec().method = ctx_.head.method;
    st = RunHeadStages(ctx_);
  }
  for (AsyncStage stage : kAsyncStages) {
    if (!st.ok()) break;
    StageResult next = co_await (this->*stage)();
    st = std::move(next);
  }
  bool more = false;
  if (!st.ok()) {
    more = co_await Refuse(std::move(st));
  } else if (resp_.status == 101) {
    more = co_await Tunnel();
  } else {
    more = co_await SendResponse();
  }
  Audit();
  co_return more;
}

asio::awaitable<bool> Exchange::Refuse(StageResult st) {
  rec().forwarded = false;
  rec().status = st.status;
  rec().reason = std::move(st.reason);
  if (st.status == kClientGone) co_return false;
  const std::string resp = ErrorResponse(rec().status, rec().reason, true);
  error_code ec;
  co_await client_->WriteAll(resp, limits_.idle_timeout, ec);
  rec().bytes_down += resp.size();
  co_return false;
}

void Exchange::Audit() {
  if (audited_) return;
  audited_ = true;
  if (sent_upstream_) {
    rec().secrets = ctx_.MatchedSecretNames();
    if (ctx_.withheld) {
      rec().withheld = ctx_.withheld->Found(ctx_.target.host, ctx_.target.port, rec().method, ctx_.request_path);
      for (const auto& w : rec().withheld) {
        if (rec().reason.find(w.second) == std::string::npos) {
          rec().reason += (rec().reason.empty() ? "" : ",") + w.second;
        }
      }
    }
  }
  WipeSubstituted();
  body_lease_.Release();
  rbody_lease_.Release();
  req_coding_lease_.Release();
  resp_coding_lease_.Release();
  decoder_.reset();
  rec().duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - ctx_.start).count();
  env_.metrics->bytes_up += rec().bytes_up;
  env_.metrics->bytes_down += rec().bytes_down;
  env_.metrics->CountRequest(rec());
  env_.audit->Write(rec());
}

void Exchange::WipeSubstituted() {
  const bool substituted = ctx_.substitute && ctx_.substitute->any_matched();
  // A signing stage put a signature or an access token into the head.
  if (wiped_ || (!substituted && ctx_.signed_names.empty())) return;
  wiped_ = true;
  // ctx_.head is reused by the next request; only its method is read after
  // this (response framing).
  SecureWipe(wire_);
  SecureWipe(body_);
  SecureWipe(ctx_.head.target);
  for (auto& f : ctx_.head.fields) SecureWipe(f.value);
}

asio::awaitable<StageResult> Exchange::Sign() {
  if (ctx_.plaintext) co_return StageResult{};  // the plaintext guard refused every token
  // Held here: a stage may move ctx_.session to a newer snapshot (same
  // secrets, same indexes; e.g. with derived values to scrub).
  const std::shared_ptr<const SessionSnapshot> session = ctx_.session;
  const auto& secrets = session->secrets();
  SigningEnv& senv = env_.signing != nullptr ? *env_.signing : DefaultSigningEnv();
  for (const SigningStage* stage : SigningStages()) {
    SigningCall call{ctx_, senv, {}, {}, &ctx_.signed_names};
    for (size_t i = 0; i < secrets.size(); ++i) {
      if (secrets[i].kind != stage->kind()) continue;
      const auto why = session->RequestWithheldReason(i, ctx_.target.host, ctx_.target.port, ctx_.head.method,
                                                           ctx_.any_rules ? ctx_.request_path : ctx_.Path());
      (why.empty() ? call.usable : call.withheld).push_back(i);
    }
    if (call.usable.empty() && call.withheld.empty()) continue;
    std::unique_ptr<SigningAction> action;
    StageResult st = co_await stage->OnHead(call, &action);
    if (!st.ok()) co_return st;
    if (action) ctx_.signing.push_back(std::move(action));
  }
  co_return StageResult{};
}

asio::awaitable<StageResult> Exchange::SendContinue() {
  if (!ctx_.expect_continue || !ctx_.has_body) co_return StageResult{};
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  error_code ec;
  co_await client_->WriteAll(kContinue, limits_.idle_timeout, ec);
  if (ec) co_return StageResult{kClientGone, "client closed the connection"};
  co_return StageResult{};
}

asio::awaitable<StageResult> Exchange::ReadRequestBody() {
  bool preserving = true;
  const SigningAction::Body signing = BodyNeed(ctx_.signing, &preserving);
  const bool sign_whole = signing == SigningAction::Body::kWhole;
  if (signing != SigningAction::Body::kUntouched && !ctx_.request_codings.empty()) {
    co_return StageResult{415, "a request body a secret signs cannot be content-coded"};
  }
  // A length-changing stream transform re-frames like substitution does.
  // A secret that refuses requests outside its allowedRequests: a body up
  // to the buffer limit is read first and scanned for its token (a larger,
  // streamed one passes with the token sealed).
  bool refusing = false;
  if (ctx_.any_rules && !ctx_.plaintext) {
    const auto& secrets = ctx_.session->secrets();
    for (size_t i = 0; i < secrets.size() && i < ctx_.request_enabled.size(); ++i) {
      refusing = refusing || (secrets[i].refuse_disallowed && !ctx_.request_enabled[i]);
    }
  }
  const bool substituting = (!ctx_.plaintext && ctx_.any_enabled) || !preserving || refusing;
  // A content-coded body is decoded, substituted and re-encoded as a stream.
  const size_t buffer_limit = ctx_.request_codings.empty() ? limits_.body_buffer_limit : 0;
  plan_ = PlanBody(ctx_.framing, substituting, true, buffer_limit);
  if (plan_.buffer_whole &&
      !body_lease_.TryCharge(ctx_.session, limits_.session_body_budget, ctx_.framing.length)) {
    plan_ = PlanBody(ctx_.framing, substituting, true, 0);  // over the sandbox's budget: stream it
  }
  if ((ctx_.plaintext || sign_whole) && ctx_.has_body) {
    // Plain HTTP: read and scan the whole (bounded) body before anything
    // leaves. A body a secret signs: read whole (bounded) to sign it.
    if (ctx_.framing.kind == BodyFraming::kContentLength) {
      if (ctx_.framing.length > limits_.body_buffer_limit) {
        co_return StageResult{413, sign_whole ? "a request body a secret signs is limited to body_buffer_limit"
                                              : "plain HTTP request bodies are limited to body_buffer_limit"};
      }
      // (A body the plan already buffers was charged above.)
      if (body_lease_.charged() < ctx_.framing.length &&
          !body_lease_.TryCharge(ctx_.session, limits_.session_body_budget,
                                 ctx_.framing.length - body_lease_.charged())) {
        co_return StageResult{503, std::string(kBudgetExhausted)};
      }
    }
    plan_ = {true, OutFraming::kLength};
  }
  reader_.emplace(*client_, cbuf_, ctx_.framing, limits_.idle_timeout);
  body_.clear();
  if (plan_.buffer_whole) {
    const bool charge_as_read = ctx_.framing.kind != BodyFraming::kContentLength;  // chunked plain HTTP
    while (true) {
      std::string err;
      auto s = co_await reader_->Next(&body_, &err);
      if (s == BodyReader::Status::kError) co_return StageResult{400, err};
      if (body_.size() > limits_.body_buffer_limit) {
        co_return StageResult{413, sign_whole ? "a request body a secret signs is limited to body_buffer_limit"
                                              : "request body too large for plain HTTP"};
      }
      if (charge_as_read && body_.size() > body_lease_.charged() &&
          !body_lease_.TryCharge(ctx_.session, limits_.session_body_budget, body_.size() - body_lease_.charged())) {
        co_return StageResult{503, std::string(kBudgetExhausted)};
      }
      if (s == BodyReader::Status::kDone) break;
    }
    if (ctx_.plaintext) {
      if (ContainsSealedToken(body_)) {
        co_return StageResult{403,
                              "plain HTTP request carries a sealed token; tokens are only substituted over HTTPS"};
      }
    } else {
      if (ctx_.withheld) ctx_.withheld->ScanWhole(&body_);
      if (ctx_.any_rules) {
        if (auto refused = RefusedByRule(ctx_)) co_return *refused;
      }
      body_ = ctx_.substitute->ReplaceAll(body_);
    }
  }
  if (plan_.buffer_whole && signing == SigningAction::Body::kStream) {
    // A small body was buffered (substitution): the stream transform runs
    // over it whole.
    std::string out;
    for (auto& action : ctx_.signing) {
      if (action->body() != SigningAction::Body::kStream) continue;
      out.clear();
      StageResult st = action->Feed(body_, &out);
      if (st.ok()) st = action->Finish(&out);
      if (!st.ok()) co_return st;
      SecureWipe(body_);
      body_.swap(out);
    }
  }
  if (sign_whole) {
    if (!plan_.buffer_whole) plan_ = {true, ctx_.framing.kind == BodyFraming::kNone ? OutFraming::kNone : OutFraming::kLength};
    for (auto& action : ctx_.signing) {
      if (action->body() != SigningAction::Body::kWhole) continue;
      StageResult st = action->OnBody(ctx_, &body_);
      if (!st.ok()) co_return st;
    }
  }
  // A Content-Length body streamed unchanged (or through a length-preserving
  // transform) keeps the client's length; a buffered one has its own.
  ApplyPlanToFields(plan_, plan_.buffer_whole ? body_.size() : ctx_.framing.length, &ctx_.head.fields);
  co_return StageResult{};
}

asio::awaitable<StageResult> Exchange::ConnectUpstream() {
  // Reuse while the target is the same.
  if (upstream_ && (!upstream_target_ || !(*upstream_target_ == ctx_.target))) {
    upstream_->Close();
    upstream_.reset();
  }
  if (upstream_) co_return StageResult{};
  ubuf_.clear();
  auto conn = co_await env_.dialer->Dial(ctx_.target, !ctx_.plaintext);
  if (!conn.stream) co_return StageResult{conn.status, std::move(conn.reason)};
  upstream_ = std::move(conn.stream);
  client_->set_idle_peer(upstream_);  // an idle client frees the upstream's TLS buffers too
  upstream_target_ = ctx_.target;
  co_return StageResult{};
}

asio::awaitable<StageResult> Exchange::Forward() {
  wire_ = SerializeRequestHead(ctx_.head, plan_.buffer_whole ? body_.size() : 0);
  if (plan_.buffer_whole) wire_ += body_;
  sent_upstream_ = true;
  error_code ec;
  co_await upstream_->WriteAll(wire_, limits_.idle_timeout, ec);
  rec().bytes_up += wire_.size();
  if (ec) co_return UpstreamFault(502, "upstream closed the connection");
  if (!plan_.buffer_whole && plan_.out != OutFraming::kNone) {
    StageResult st = co_await RelayRequestBody();
    if (!st.ok()) co_return st;
  }
  // Forwarded: the substituted copies held real values; do not keep them.
  WipeSubstituted();
  if (body_.capacity() > 4096) std::string().swap(body_);
  body_lease_.Release();
  co_return StageResult{};
}

asio::awaitable<StageResult> Exchange::RelayRequestBody() {
  StreamReplacer* replacer = ctx_.substitute && ctx_.any_enabled ? &*ctx_.substitute : nullptr;
  // A content-coded body: decode, substitute, re-encode in the same codings.
  std::unique_ptr<ContentDecoder> decoder;
  std::unique_ptr<ContentEncoder> encoder;
  if (!ctx_.request_codings.empty()) {
    const auto& codings = ctx_.request_codings;
    auto options = ChargeDecoder(req_coding_lease_, ctx_.session, limits_.session_body_budget, codings);
    if (!options || !req_coding_lease_.TryCharge(ctx_.session, limits_.session_body_budget, EncoderCost(codings))) {
      co_return StageResult{503, std::string(kBudgetExhausted)};
    }
    auto d = ContentDecoder::Create(codings, *options);
    auto e = ContentEncoder::Create(codings);
    if (!d || !e) co_return StageResult{503, "cannot allocate a content-coding state"};
    decoder = std::move(*d);
    encoder = std::move(*e);
  }
  // Withheld tokens (secrets that may not go to this host pass sealed) are
  // audited in a content-coded body too: in the decoded bytes when the body
  // is decoded to substitute; otherwise a decoder runs beside the unchanged
  // bytes for the audit alone (best effort: a coding the proxy cannot
  // decode, or a decoder over the sandbox's budget, leaves the body
  // forwarded as it is and unscanned — nothing is substituted into it).
  WithheldTokens* withheld = ctx_.withheld && ctx_.withheld->active() ? &*ctx_.withheld : nullptr;
  std::unique_ptr<ContentDecoder> scan_decoder;
  if (withheld != nullptr && !decoder) {
    if (const auto ce = JoinedField(ctx_.head.fields, "content-encoding")) {
      const auto codings = ParseContentEncoding(*ce);
      if (codings && !codings->empty()) {
        if (auto options = ChargeDecoder(req_coding_lease_, ctx_.session, limits_.session_body_budget, *codings)) {
          if (auto d = ContentDecoder::Create(*codings, *options)) scan_decoder = std::move(*d);
        }
      }
    }
  }
  // Stream transforms of signing stages run after substitution: the
  // replacer is applied here, the writer only frames.
  std::vector<SigningAction*> transforms;
  for (auto& a : ctx_.signing) {
    if (a->body() == SigningAction::Body::kStream) transforms.push_back(a.get());
  }
  StreamReplacer* const substituter = replacer;
  if (!transforms.empty()) replacer = nullptr;
  std::string staged, transformed;
  // Substitution then each transform; `last` = the body's end.
  auto transform = [&](std::string_view in, bool last, std::string_view* out) -> StageResult {
    staged.clear();
    if (substituter != nullptr) {
      substituter->Feed(in, &staged);
      if (last) substituter->Finish(&staged);
    } else {
      staged.append(in);
    }
    for (SigningAction* t : transforms) {
      transformed.clear();
      StageResult st = t->Feed(staged, &transformed);
      if (st.ok() && last) st = t->Finish(&transformed);
      if (!st.ok()) return st;
      staged.swap(transformed);
    }
    *out = staged;
    return {};
  };
  BodyWriter writer(*upstream_, plan_.out, replacer, limits_.idle_timeout, encoder.get());
  std::string piece;
  std::string decoded;
  while (true) {
    piece.clear();
    std::string err;
    auto s = co_await reader_->Next(&piece, &err);
    if (s == BodyReader::Status::kError) {
      rec().bytes_up += writer.wire_bytes();
      co_return StageResult{400, err};
    }
    bool written = false;
    if (decoder) {
      const Decoded d =
          co_await WriteDecoded(*decoder, piece, s == BodyReader::Status::kDone, writer, decoded, withheld);
      if (d == Decoded::kBadCoding) {
        rec().bytes_up += writer.wire_bytes();
        co_return StageResult{400, "request body does not decode as its Content-Encoding says"};
      }
      written = d == Decoded::kOk;
    } else if (!transforms.empty()) {
      if (ctx_.withheld && ctx_.withheld->active()) ctx_.withheld->Scan(piece);
      std::string_view out;
      StageResult st = transform(piece, s == BodyReader::Status::kDone, &out);
      if (!st.ok()) {
        rec().bytes_up += writer.wire_bytes();
        co_return st;
      }
      written = co_await writer.Write(out);
      SecureWipe(staged);  // may hold substituted values
    } else {
      if (scan_decoder) {
        if (!ScanDecoded(*scan_decoder, piece, s == BodyReader::Status::kDone, *withheld, decoded)) {
          scan_decoder.reset();
        }
      } else if (withheld != nullptr) {
        withheld->Scan(piece);
      }
      written = co_await writer.Write(piece);
    }
    if (!written) {
      rec().bytes_up += writer.wire_bytes();
      co_return UpstreamFault(502, "upstream closed the connection during the request body");
    }
    if (s == BodyReader::Status::kDone) break;
  }
  const bool finished = co_await writer.Finish();
  rec().bytes_up += writer.wire_bytes();
  if (!finished) co_return UpstreamFault(502, "upstream closed the connection during the request body");
  co_return StageResult{};
}

asio::awaitable<StageResult> Exchange::ReadResponseHead() {
  // 1xx other than 101 are dropped: we answered Expect ourselves.
  std::string reason;
  while (true) {
    const HeadRead r = co_await ReadResponseHeadFrom(*upstream_, ubuf_, &resp_, limits_, &reason);
    if (r != HeadRead::kOk) {
      co_return UpstreamFault(r == HeadRead::kTimeout ? 504 : 502, r == HeadRead::kEof
                                                                       ? "upstream closed without a response"
                                                                       : "invalid response from upstream");
    }
    if (resp_.status >= 200 || (resp_.status == 101 && ctx_.upgrade)) break;
  }
  if (AnalyzeResponseFraming(resp_, ctx_.head.method, &resp_framing_)) {
    co_return UpstreamFault(502, "upstream response framing is ambiguous");
  }
  upstream_close_ = FieldHasToken(resp_.fields, "connection", "close") || resp_.version_minor == 0 ||
                    resp_framing_.kind == BodyFraming::kUntilClose;
  // Scrub the response head.
  const auto& values = ctx_.session->scrubber();
  scrub_.emplace(values);
  scrubbing_ = !values->empty();
  if (scrubbing_) {
    StageResult st = ScrubResponseHead(&resp_, &*scrub_);
    if (!st.ok()) co_return st;
  }
  resp_.version_minor = 1;
  // A content-coded body is decoded before scrubbing and delivered as
  // identity. A coding the proxy cannot decode is refused: never passed on
  // unscrubbed.
  decoder_.reset();
  if (scrubbing_) {
    if (const auto ce = JoinedField(resp_.fields, "content-encoding")) {
      const bool has_body = resp_framing_.kind != BodyFraming::kNone;
      auto codings = ParseContentEncoding(*ce);
      if (!codings) {
        if (has_body) {
          co_return UpstreamFault(502, "response content-coding cannot be decoded for scrubbing "
                                       "(the proxy decodes gzip, deflate, br and zstd)");
        }
      } else if (!codings->empty()) {
        if (resp_.status == 206 && has_body) {
          // A byte range of a coded body cannot be decoded alone.
          co_return UpstreamFault(502, "partial response in a content-coding cannot be decoded for scrubbing");
        }
        RemoveFields(&resp_.fields, "content-encoding");
        WeakenETag(&resp_.fields);  // the identity body is another representation
        if (!has_body) {
          RemoveFields(&resp_.fields, "content-length");  // described the encoded body (HEAD)
        } else {
          auto options = ChargeDecoder(resp_coding_lease_, ctx_.session, limits_.session_body_budget, *codings);
          if (!options) co_return StageResult{503, "the sandbox's memory budget for response decoding is exhausted"};
          auto d = ContentDecoder::Create(*codings, *options);
          if (!d) co_return StageResult{503, "cannot allocate a content-coding state"};
          decoder_ = std::move(*d);
        }
      }
    }
  }
  ws_.reset();
  ws_up_.reset();
  if (resp_.status == 101 && !ctx_.plaintext && ctx_.any_enabled) {
    // Tokens in client frames (TLS only, as for the head).
    ws_up_ = std::make_shared<WebSocketSubstituter>(ctx_.session->substitutions(), ctx_.enabled);
  }
  if (resp_.status == 101 && scrubbing_) {
    const auto up = FindFields(resp_.fields, "upgrade");
    if (up.size() != 1 || !EqualsIgnoreCase(up[0]->value, "websocket") ||
        !FindFields(resp_.fields, "sec-websocket-extensions").empty()) {
      co_return StageResult{502, "upgrade that cannot be scrubbed (only plain websocket is)"};
    }
    ws_ = std::make_shared<WebSocketScrubber>(values);
  }
  co_return StageResult{};
}

asio::awaitable<StageResult> Exchange::PlanResponse() {
  if (resp_.status == 101) co_return StageResult{};
  // A decoded body's length is known only at its end: always streamed.
  rplan_ = PlanBody(resp_framing_, scrubbing_, ctx_.client_is_11, decoder_ ? 0 : limits_.body_buffer_limit);
  if (rplan_.buffer_whole &&
      !rbody_lease_.TryCharge(ctx_.session, limits_.session_body_budget, resp_framing_.length)) {
    rplan_ = PlanBody(resp_framing_, scrubbing_, ctx_.client_is_11, 0);  // over the budget: stream it
  }
  close_after_ = ctx_.client_close || rplan_.out == OutFraming::kClose;
  RemoveFields(&resp_.fields, "connection");
  RemoveFields(&resp_.fields, "keep-alive");
  if (close_after_) resp_.fields.push_back({"Connection", "close"});
  rreader_.emplace(*upstream_, ubuf_, resp_framing_, limits_.idle_timeout);
  rbody_.clear();
  if (!rplan_.buffer_whole) co_return StageResult{};
  while (true) {
    std::string err;
    auto s = co_await rreader_->Next(&rbody_, &err);
    if (s == BodyReader::Status::kError) co_return UpstreamFault(502, "upstream response body: " + err);
    if (s == BodyReader::Status::kDone) break;
  }
  rbody_ = scrub_->ReplaceAll(rbody_);
  co_return StageResult{};
}

asio::awaitable<bool> Exchange::SendResponse() {
  ApplyPlanToFields(rplan_, rplan_.buffer_whole ? rbody_.size() : resp_framing_.length, &resp_.fields);
  std::string head = SerializeResponseHead(resp_, rplan_.buffer_whole ? rbody_.size() : 0);
  if (rplan_.buffer_whole) head += rbody_;
  const bool streamed = !rplan_.buffer_whole && rplan_.out != OutFraming::kNone;
  bool ok = true;
  if (streamed && rreader_->Ready()) {
    // Body bytes came with the head: one write (one TLS record) for both.
    const bool relayed = co_await RelayResponseBody(std::move(head));
    ok = relayed;
  } else {
    error_code ec;
    co_await client_->WriteAll(head, limits_.idle_timeout, ec);
    rec().bytes_down += head.size();
    ok = !ec;
    if (ok && streamed) {
      const bool relayed = co_await RelayResponseBody({});
      ok = relayed;
    }
  }
  rec().forwarded = true;
  rec().status = resp_.status;
  rec().scrubbed = scrub_->any_matched();
  if (upstream_close_ || !ok) {
    upstream_->Close();
    upstream_.reset();
  }
  // An idle keep-alive connection should not pin large read buffers (the
  // 2 KiB one a header wait uses is kept).
  if (cbuf_.empty() && cbuf_.capacity() > 4096) std::string().swap(cbuf_);
  if (ubuf_.empty() && ubuf_.capacity() > 4096) std::string().swap(ubuf_);
  if (rbody_.capacity() > 4096) std::string().swap(rbody_);
  if (body_.capacity() > 4096) std::string().swap(body_);
  rbody_lease_.Release();
  co_return ok && !close_after_;
}

asio::awaitable<bool> Exchange::RelayResponseBody(std::string head) {
  BodyWriter writer(*client_, rplan_.out, scrubbing_ ? &*scrub_ : nullptr, limits_.idle_timeout);
  // Gather the head and the body bytes already read; write them before the
  // first wait for more (arrival times do not change, only write counts).
  if (!head.empty()) writer.Cork(std::move(head));
  std::string piece;
  std::string decoded;
  bool ok = true;
  while (ok) {
    if (writer.corked() && !rreader_->Ready()) {
      const bool sent = co_await writer.Uncork();
      ok = sent;
      if (!ok) break;
    }
    piece.clear();
    std::string err;
    auto s = co_await rreader_->Next(&piece, &err);
    if (s == BodyReader::Status::kError) {
      // Headers are gone already: the only honest signal is a cut connection.
      env_.metrics->upstream_errors++;
      ok = false;
      break;
    }
    if (decoder_) {
      const Decoded d = co_await WriteDecoded(*decoder_, piece, s == BodyReader::Status::kDone, writer, decoded);
      if (d == Decoded::kBadCoding) {
        // Corrupt or truncated: cut (no final chunk), never pass it on.
        env_.metrics->upstream_errors++;
        rec().reason = "response body does not decode as its Content-Encoding says; connection cut";
      }
      ok = d == Decoded::kOk;
    } else {
      ok = co_await writer.Write(piece);
    }
    if (s == BodyReader::Status::kDone) break;
  }
  if (ok) {
    const bool finished = co_await writer.Finish();
    ok = finished;
  }
  if (writer.corked()) {
    // Also after a bad body: the head and the valid bytes, then the cut.
    const bool sent = co_await writer.Uncork();
    ok = ok && sent;
  }
  rec().bytes_down += writer.wire_bytes();
  co_return ok;
}

asio::awaitable<bool> Exchange::Tunnel() {
  const std::string head = SerializeResponseHead(resp_);
  error_code ec;
  co_await client_->WriteAll(head, limits_.idle_timeout, ec);
  rec().bytes_down += head.size();
  rec().forwarded = true;
  rec().status = 101;
  rec().scrubbed = scrub_->any_matched();
  Audit();  // now: the tunnel may last for hours
  if (ec) co_return false;
  // Bytes already buffered on either side go first, then the two pumps.
  if (!cbuf_.empty()) {
    std::string first = cbuf_;
    if (ws_up_) {
      first.clear();
      const bool fed = ws_up_->Feed(cbuf_, &first);
      if (!fed) co_return false;
    }
    co_await upstream_->WriteAll(first, limits_.idle_timeout, ec);
    SecureWipe(first);
  }
  if (!ubuf_.empty()) {
    std::string first = ubuf_;
    if (ws_) {
      first.clear();
      const bool fed = ws_->Feed(ubuf_, &first);
      if (!fed) co_return false;
    }
    co_await client_->WriteAll(first, limits_.idle_timeout, ec);
  }
  cbuf_.clear();
  ubuf_.clear();
  auto ex = co_await asio::this_coro::executor;
  asio::co_spawn(ex, Pump(upstream_, client_, limits_.idle_timeout, ws_), asio::detached);
  co_await Pump(client_, upstream_, limits_.idle_timeout, ws_up_);
  co_return false;
}

asio::awaitable<void> Exchange::Run() {
  // NOTE: GCC 12 miscompiles co_await inside if/while conditions (the
  // coroutine resumes into an invalid state): always await into a variable.
  while (true) {
    const bool more = co_await One();
    if (!more) break;
  }
  if (upstream_) upstream_->Close();
  co_await client_->GracefulClose();
}

}  // namespace

std::string ErrorResponse(int status, std::string_view reason, bool close) {
  nlohmann::json j;
  j["error"] = std::string(reason);
  j["proxy"] = "osb-secrets-proxy";
  const std::string body = j.dump() + "\n";
  std::string s = "HTTP/1.1 " + std::to_string(status) + " " + StatusText(status) +
                  "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (close) s += "Connection: close\r\n";
  s += "\r\n" + body;
  return s;
}

asio::awaitable<HeadRead> ReadRequestHead(ByteStream& s, std::string& buf, RequestHead* head,
                                          const ProxyLimits& limits, Millis first_byte_timeout, std::string* reason,
                                          bool consume) {
  co_return co_await ReadHeadImpl(s, buf, head, limits, first_byte_timeout, reason, consume, ParseRequestHead);
}

asio::awaitable<void> ServeHttp(ExchangeEnv env, std::shared_ptr<ByteStream> client, ExchangeOptions options) {
  Exchange ex(env, std::move(client), std::move(options));
  co_await ex.Run();
}

}  // namespace osb::secretsproxy
