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
#include "secretsproxy/upstream_connector.h"
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

asio::awaitable<HeadRead> ReadResponseHead(ByteStream& s, std::string& buf, ResponseHead* head,
                                           const ProxyLimits& limits, std::string* reason) {
  co_return co_await ReadHeadImpl(s, buf, head, limits, limits.idle_timeout, reason, true, ParseResponseHead);
}

std::vector<std::string> MatchedNames(const SessionSnapshot& session, const StreamReplacer& r) {
  std::vector<std::string> names;
  for (size_t i = 0; i < r.matched().size(); ++i) {
    if (r.matched()[i]) names.push_back(session.secrets()[i].name);
  }
  return names;
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

struct Exchange {
  std::shared_ptr<ProxyShared> shared;
  std::shared_ptr<ByteStream> client;
  ExchangeOptions opt;
  const ProxyLimits& limits;
  std::string cbuf;
  std::shared_ptr<ByteStream> upstream;
  std::optional<Target> upstream_target;
  std::string ubuf;
  // Reused from request to request (their strings keep their capacity).
  RequestHead req;
  ResponseHead resp;
  // Which secrets may be substituted for the current target; recomputed only
  // when the session snapshot or the target host changes.
  std::shared_ptr<const SessionSnapshot> enabled_session;
  std::string enabled_host;
  uint16_t enabled_port = 0;
  std::vector<bool> enabled;
  bool any_enabled = false;

  asio::awaitable<void> Run();
  // Returns false when the client connection must end.
  asio::awaitable<bool> One();
  asio::awaitable<bool> Refuse(AuditRecord& rec, Clock::time_point start, int status, std::string reason,
                               bool close);
};

asio::awaitable<bool> Exchange::Refuse(AuditRecord& rec, Clock::time_point start, int status, std::string reason,
                                       bool close) {
  const std::string resp = ErrorResponse(status, reason, close);
  error_code ec;
  co_await client->WriteAll(resp, limits.idle_timeout, ec);
  rec.forwarded = false;
  rec.status = status;
  rec.reason = std::move(reason);
  rec.bytes_down += resp.size();
  rec.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  shared->audit->bytes_down += resp.size();
  shared->audit->Write(rec);
  co_return !close && !ec;
}

asio::awaitable<bool> Exchange::One() {
  std::string reason;
  const HeadRead hr = co_await ReadRequestHead(*client, cbuf, &req, limits, limits.idle_timeout, &reason);
  const auto start = Clock::now();
  AuditRecord rec;
  rec.source = opt.source_ip;
  if (opt.fixed_target) rec.host = opt.fixed_target->host;
  if (hr == HeadRead::kEof || hr == HeadRead::kTimeout || hr == HeadRead::kError) co_return false;
  if (hr == HeadRead::kBad) co_return co_await Refuse(rec, start, 400, reason, true);
  if (hr == HeadRead::kTooLarge) co_return co_await Refuse(rec, start, 431, reason, true);
  rec.method = req.method;

  auto session = shared->sessions->Lookup(opt.source_ip);
  if (!session) co_return co_await Refuse(rec, start, 403, "no sandbox session for this source address", true);
  rec.sandbox = session->sandbox_id();
  if (opt.sni_mismatch) {
    co_return co_await Refuse(rec, start, 421, "TLS server name does not match the CONNECT target", true);
  }
  StageResult st = CheckMethod(req);
  if (!st.ok()) co_return co_await Refuse(rec, start, st.status, st.reason, true);

  // Which upstream does this request name, and does everything agree?
  Target target;
  switch (opt.mode) {
    case ExchangeMode::kTls:
      target = *opt.fixed_target;
      st = CheckHostAgreement(&req, target, "https");
      break;
    case ExchangeMode::kExplicitPlain:
      st = TargetFromAbsoluteForm(&req, &target);
      break;
    case ExchangeMode::kTransparentPlain:
      st = TargetFromHost(req, shared->config.transparent_http_port, &target);
      break;
  }
  if (!target.host.empty()) rec.host = target.host;
  if (!st.ok()) co_return co_await Refuse(rec, start, st.status, st.reason, true);
  if (!session->EgressAllowed(target.host, target.port)) {
    co_return co_await Refuse(rec, start, 403, "host is not on the sandbox's egress allowlist", true);
  }
  BodyFraming in_framing;
  if (auto err = AnalyzeRequestFraming(req, &in_framing)) co_return co_await Refuse(rec, start, 400, *err, true);

  const bool client_close = FieldHasToken(req.fields, "connection", "close") ||
                            (req.version_minor == 0 && !FieldHasToken(req.fields, "connection", "keep-alive"));
  const bool upgrade = HasField(req.fields, "upgrade") &&
                       FieldHasToken(req.fields, "connection", "upgrade");
  const bool has_body = in_framing.kind != BodyFraming::kNone &&
                        !(in_framing.kind == BodyFraming::kContentLength && in_framing.length == 0);
  const bool plaintext = opt.mode != ExchangeMode::kTls;
  const bool client_is_11 = req.version_minor == 1;

  // Substitution (TLS) or the plaintext guard.
  if (enabled_session != session || enabled_host != target.host || enabled_port != target.port) {
    enabled = session->EnabledFor(target.host, target.port);
    any_enabled = std::find(enabled.begin(), enabled.end(), true) != enabled.end();
    enabled_session = session;
    enabled_host = target.host;
    enabled_port = target.port;
  }
  StreamReplacer replacer(session->substitutions(), enabled, StreamReplacer::HoldBack::kMinimal);
  // Tokens of secrets that may not go to this host pass sealed; note which.
  WithheldTokens withheld(session, enabled);
  if (withheld.active() && !plaintext) {
    withheld.ScanWhole(&req.target);
    for (auto& f : req.fields) withheld.ScanWhole(&f.value);
  }
  if (plaintext) {
    if (HeadContainsSealedToken(req)) {
      co_return co_await Refuse(rec, start, 403,
                                "plain HTTP request carries a sealed token; tokens are only substituted over HTTPS",
                                true);
    }
  } else {
    st = SubstituteHead(&req, &replacer);
    if (!st.ok()) co_return co_await Refuse(rec, start, st.status, st.reason, true);
  }
  const bool expect_continue = FieldHasToken(req.fields, "expect", "100-continue");
  RemoveFields(&req.fields, "expect");
  RemoveFields(&req.fields, "proxy-connection");
  RemoveFields(&req.fields, "proxy-authorization");
  RemoveFields(&req.fields, "keep-alive");
  // Compressed websocket frames could not be scrubbed: never negotiate it.
  if (upgrade) RemoveFields(&req.fields, "sec-websocket-extensions");
  if (req.version_minor == 0) {
    if (!HasField(req.fields, "host")) req.fields.push_back({"Host", target.host});
    if (client_close && !FieldHasToken(req.fields, "connection", "close")) {
      req.fields.push_back({"Connection", "close"});
    }
    req.version_minor = 1;
  }
  if (expect_continue && has_body) {
    error_code ec;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    co_await client->WriteAll(kContinue, limits.idle_timeout, ec);
    if (ec) co_return false;
  }

  // Plain HTTP: read and scan the whole (bounded) body before anything leaves.
  std::string body;
  BodyPlan plan = PlanBody(in_framing, !plaintext && any_enabled, true, limits.body_buffer_limit);
  if (plaintext && has_body) {
    if (in_framing.kind == BodyFraming::kContentLength && in_framing.length > limits.body_buffer_limit) {
      co_return co_await Refuse(rec, start, 413, "plain HTTP request bodies are limited to body_buffer_limit", true);
    }
    plan = {true, OutFraming::kLength};
  }
  BodyReader reader(*client, cbuf, in_framing, limits.idle_timeout);
  if (plan.buffer_whole) {
    while (true) {
      std::string err;
      auto s = co_await reader.Next(&body, &err);
      if (s == BodyReader::Status::kError) co_return co_await Refuse(rec, start, 400, err, true);
      if (body.size() > limits.body_buffer_limit) {
        co_return co_await Refuse(rec, start, 413, "request body too large for plain HTTP", true);
      }
      if (s == BodyReader::Status::kDone) break;
    }
    if (plaintext) {
      if (ContainsSealedToken(body)) {
        co_return co_await Refuse(
            rec, start, 403, "plain HTTP request carries a sealed token; tokens are only substituted over HTTPS", true);
      }
    } else {
      withheld.ScanWhole(&body);
      body = replacer.ReplaceAll(body);
    }
  }
  ApplyPlanToFields(plan, body.size(), &req.fields);

  // Upstream: reuse while the target is the same.
  if (upstream && (!upstream_target || !(*upstream_target == target))) {
    upstream->Close();
    upstream.reset();
  }
  if (!upstream) {
    ubuf.clear();
    auto conn = co_await ConnectUpstream(shared, target, !plaintext);
    if (!conn.stream) co_return co_await Refuse(rec, start, conn.status, conn.reason, true);
    upstream = conn.stream;
    client->set_idle_peer(upstream);  // an idle client frees the upstream's TLS buffers too
    upstream_target = target;
  }

  // Forward the request.
  error_code ec;
  std::string head = SerializeRequestHead(req, plan.buffer_whole ? body.size() : 0);
  if (plan.buffer_whole) head += body;
  co_await upstream->WriteAll(head, limits.idle_timeout, ec);
  rec.bytes_up += head.size();
  if (ec) {
    shared->audit->upstream_errors++;
    co_return co_await Refuse(rec, start, 502, "upstream closed the connection", true);
  }
  if (!plan.buffer_whole && plan.out != OutFraming::kNone) {
    BodyWriter writer(*upstream, plan.out, any_enabled ? &replacer : nullptr, limits.idle_timeout);
    std::string piece;
    while (true) {
      piece.clear();
      std::string err;
      auto s = co_await reader.Next(&piece, &err);
      if (s == BodyReader::Status::kError) {
        rec.bytes_up += writer.wire_bytes();
        co_return co_await Refuse(rec, start, 400, err, true);
      }
      withheld.Scan(piece);
      const bool written = co_await writer.Write(piece);
      if (!written) {
        shared->audit->upstream_errors++;
        co_return co_await Refuse(rec, start, 502, "upstream closed the connection during the request body", true);
      }
      if (s == BodyReader::Status::kDone) break;
    }
    const bool finished = co_await writer.Finish();
    if (!finished) {
      co_return co_await Refuse(rec, start, 502, "upstream closed the connection during the request body", true);
    }
    rec.bytes_up += writer.wire_bytes();
  }
  rec.secrets = MatchedNames(*session, replacer);
  rec.withheld = withheld.Found(target.host, target.port);
  for (const auto& w : rec.withheld) {
    if (rec.reason.find(w.second) == std::string::npos) rec.reason += (rec.reason.empty() ? "" : ",") + w.second;
  }
  shared->audit->bytes_up += rec.bytes_up;
  if (replacer.any_matched()) {
    // Forwarded: the substituted copies held real values; do not keep them
    // (req is reused by the next request; only its method is read below).
    SecureWipe(head);
    SecureWipe(body);
    SecureWipe(req.target);
    for (auto& f : req.fields) SecureWipe(f.value);
  }

  // Response head (1xx other than 101 are dropped: we answered Expect ourselves).
  while (true) {
    const HeadRead r = co_await ReadResponseHead(*upstream, ubuf, &resp, limits, &reason);
    if (r != HeadRead::kOk) {
      shared->audit->upstream_errors++;
      co_return co_await Refuse(rec, start, r == HeadRead::kTimeout ? 504 : 502,
                                r == HeadRead::kEof ? "upstream closed without a response"
                                                    : "invalid response from upstream",
                                true);
    }
    if (resp.status >= 200 || (resp.status == 101 && upgrade)) break;
  }
  BodyFraming out_in;
  if (auto err = AnalyzeResponseFraming(resp, req.method, &out_in)) {
    shared->audit->upstream_errors++;
    co_return co_await Refuse(rec, start, 502, "upstream response framing is ambiguous", true);
  }

  // Scrub the response head.
  StreamReplacer scrub(session->scrubber());
  const bool scrubbing = !session->scrubber()->empty();
  if (scrubbing) {
    st = ScrubResponseHead(&resp, &scrub);
    if (!st.ok()) co_return co_await Refuse(rec, start, st.status, st.reason, true);
  }
  resp.version_minor = 1;

  if (resp.status == 101) {
    std::shared_ptr<WebSocketRewriter> ws;
    std::shared_ptr<WebSocketRewriter> ws_up;  // tokens in client frames (TLS only, as for the head)
    if (!plaintext && any_enabled) ws_up = std::make_shared<WebSocketSubstituter>(session->substitutions(), enabled);
    if (scrubbing) {
      const auto up = FindFields(resp.fields, "upgrade");
      if (up.size() != 1 || !EqualsIgnoreCase(up[0]->value, "websocket") ||
          !FindFields(resp.fields, "sec-websocket-extensions").empty()) {
        co_return co_await Refuse(rec, start, 502, "upgrade that cannot be scrubbed (only plain websocket is)", true);
      }
      ws = std::make_shared<WebSocketScrubber>(session->scrubber());
    }
    const std::string rh = SerializeResponseHead(resp);
    co_await client->WriteAll(rh, limits.idle_timeout, ec);
    if (ec) co_return false;
    rec.forwarded = true;
    rec.status = 101;
    rec.scrubbed = scrub.any_matched();
    rec.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    shared->audit->Write(rec);
    // Bytes already buffered on either side go first, then a raw tunnel.
    if (!cbuf.empty()) {
      std::string first = cbuf;
      if (ws_up) {
        first.clear();
        const bool fed = ws_up->Feed(cbuf, &first);
        if (!fed) co_return false;
      }
      co_await upstream->WriteAll(first, limits.idle_timeout, ec);
      SecureWipe(first);
    }
    if (!ubuf.empty()) {
      std::string first = ubuf;
      if (ws) {
        first.clear();
        const bool fed = ws->Feed(ubuf, &first);
        if (!fed) co_return false;
      }
      co_await client->WriteAll(first, limits.idle_timeout, ec);
    }
    cbuf.clear();
    ubuf.clear();
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, Pump(upstream, client, limits.idle_timeout, ws), asio::detached);
    co_await Pump(client, upstream, limits.idle_timeout, ws_up);
    co_return false;
  }

  BodyPlan rplan = PlanBody(out_in, scrubbing, client_is_11, limits.body_buffer_limit);
  bool close_after = client_close || rplan.out == OutFraming::kClose;
  const bool upstream_close = FieldHasToken(resp.fields, "connection", "close") || resp.version_minor == 0 ||
                              out_in.kind == BodyFraming::kUntilClose;
  RemoveFields(&resp.fields, "connection");
  RemoveFields(&resp.fields, "keep-alive");
  if (close_after) resp.fields.push_back({"Connection", "close"});

  BodyReader rreader(*upstream, ubuf, out_in, limits.idle_timeout);
  std::string rbody;
  if (rplan.buffer_whole) {
    while (true) {
      std::string err;
      auto s = co_await rreader.Next(&rbody, &err);
      if (s == BodyReader::Status::kError) {
        shared->audit->upstream_errors++;
        co_return co_await Refuse(rec, start, 502, "upstream response body: " + err, true);
      }
      if (s == BodyReader::Status::kDone) break;
    }
    rbody = scrub.ReplaceAll(rbody);
  }
  ApplyPlanToFields(rplan, rbody.size(), &resp.fields);
  std::string rhead = SerializeResponseHead(resp, rplan.buffer_whole ? rbody.size() : 0);
  if (rplan.buffer_whole) rhead += rbody;
  co_await client->WriteAll(rhead, limits.idle_timeout, ec);
  rec.bytes_down += rhead.size();
  bool ok = !ec;
  if (ok && !rplan.buffer_whole && rplan.out != OutFraming::kNone) {
    BodyWriter writer(*client, rplan.out, scrubbing ? &scrub : nullptr, limits.idle_timeout);
    std::string piece;
    while (ok) {
      piece.clear();
      std::string err;
      auto s = co_await rreader.Next(&piece, &err);
      if (s == BodyReader::Status::kError) {
        // Headers are gone already: the only honest signal is a cut connection.
        shared->audit->upstream_errors++;
        ok = false;
        break;
      }
      ok = co_await writer.Write(piece);
      if (s == BodyReader::Status::kDone) break;
    }
    if (ok) {
      const bool finished = co_await writer.Finish();
      ok = finished;
    }
    rec.bytes_down += writer.wire_bytes();
  }
  shared->audit->bytes_down += rec.bytes_down;
  rec.forwarded = true;
  rec.status = resp.status;
  rec.scrubbed = scrub.any_matched();
  rec.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  shared->audit->Write(rec);
  if (upstream_close || !ok) {
    upstream->Close();
    upstream.reset();
  }
  // An idle keep-alive connection should not pin large read buffers (the
  // 2 KiB one a header wait uses is kept).
  if (cbuf.empty() && cbuf.capacity() > 4096) std::string().swap(cbuf);
  if (ubuf.empty() && ubuf.capacity() > 4096) std::string().swap(ubuf);
  co_return ok && !close_after;
}

asio::awaitable<void> Exchange::Run() {
  // NOTE: GCC 12 miscompiles co_await inside if/while conditions (the
  // coroutine resumes into an invalid state): always await into a variable.
  while (true) {
    const bool more = co_await One();
    if (!more) break;
  }
  if (upstream) upstream->Close();
  co_await client->GracefulClose();
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

asio::awaitable<void> ServeHttp(std::shared_ptr<ProxyShared> shared, std::shared_ptr<ByteStream> client,
                                ExchangeOptions options) {
  Exchange ex{shared, client, std::move(options), shared->config.limits};
  ex.cbuf = std::move(ex.opt.initial_bytes);
  co_await ex.Run();
}

}  // namespace osb::secretsproxy
