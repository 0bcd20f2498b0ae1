#include "secretsproxy/request_pipeline.h"

#include <algorithm>

namespace osb::secretsproxy {

void RequestContext::Begin() {
  start = std::chrono::steady_clock::now();
  rec = AuditRecord{};
  rec.source = conn.source_ip;
  if (conn.fixed_target) rec.host = conn.fixed_target->host;
  session.reset();
  target.host.clear();
  target.port = 0;
  framing = BodyFraming{};
  plaintext = conn.mode != ExchangeMode::kTls;
  client_is_11 = false;
  client_close = upgrade = has_body = expect_continue = false;
  request_codings.clear();
  substitute.reset();
  withheld.reset();
  request_enabled.clear();
  request_path.clear();
  signing.clear();
  signed_names.clear();
}

std::string_view RequestContext::Path() const {
  std::string_view t = head.target;
  const auto q = t.find('?');
  return q == std::string_view::npos ? t : t.substr(0, q);
}

std::vector<std::string> RequestContext::MatchedSecretNames() const {
  std::vector<std::string> names;
  if (substitute && substitute->any_matched()) {
    for (size_t i = 0; i < substitute->matched().size(); ++i) {
      if (substitute->matched()[i]) names.push_back(session->secrets()[i].name);
    }
  }
  for (const auto& n : signed_names) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  return names;
}

StageResult FindSession(RequestContext& c) {
  // Hot path (keep-alive): the connection's last answer while the registry
  // has not changed since (see SessionRegistry::generation()).
  const uint64_t generation = c.sessions.generation();
  if (c.looked_up && generation == c.lookup_generation && !c.looked_up->Expired()) {
    c.session = c.looked_up;
  } else {
    c.session = c.sessions.Lookup(c.conn.source_ip);
    c.looked_up = c.session;
    c.lookup_generation = generation;
  }
  if (!c.session) return {403, "no sandbox session for this source address"};
  c.rec.sandbox = c.session->sandbox_id();
  return {};
}

StageResult CheckSni(RequestContext& c) {
  if (c.conn.sni_mismatch) return {421, "TLS server name does not match the CONNECT target"};
  return {};
}

StageResult CheckMethodStage(RequestContext& c) { return CheckMethod(c.head); }

StageResult FindTarget(RequestContext& c) {
  StageResult st;
  switch (c.conn.mode) {
    case ExchangeMode::kTls:
      c.target = *c.conn.fixed_target;
      break;
    case ExchangeMode::kExplicitPlain:
      st = TargetFromAbsoluteForm(&c.head, &c.target);  // includes the Host agreement
      break;
    case ExchangeMode::kTransparentPlain:
      st = TargetFromHost(c.head, c.transparent_http_port, &c.target);  // idem
      break;
  }
  if (!c.target.host.empty()) c.rec.host = c.target.host;
  return st;
}

StageResult CheckHostStage(RequestContext& c) {
  if (c.conn.mode != ExchangeMode::kTls) return {};  // plain modes: checked while finding the target
  return CheckHostAgreement(&c.head, c.target, "https");
}

StageResult CheckAllowlist(RequestContext& c) {
  if (!c.session->EgressAllowed(c.target.host, c.target.port)) {
    return {403, "host is not on the sandbox's egress allowlist"};
  }
  return {};
}

StageResult AnalyzeFraming(RequestContext& c) {
  if (auto err = AnalyzeRequestFraming(c.head, &c.framing)) return {400, *err};
  const auto& f = c.head.fields;
  c.client_is_11 = c.head.version_minor == 1;
  c.client_close = FieldHasToken(f, "connection", "close") ||
                   (c.head.version_minor == 0 && !FieldHasToken(f, "connection", "keep-alive"));
  c.upgrade = HasField(f, "upgrade") && FieldHasToken(f, "connection", "upgrade");
  c.has_body = c.framing.kind != BodyFraming::kNone &&
               !(c.framing.kind == BodyFraming::kContentLength && c.framing.length == 0);
  return {};
}

std::optional<StageResult> RefusedByRule(const RequestContext& c) {
  if (!c.withheld) return std::nullopt;
  const auto& secrets = c.session->secrets();
  for (const auto& [name, reason] : c.withheld->Found(c.target.host, c.target.port, c.head.method, c.request_path)) {
    if (reason.rfind("request_not_allowed", 0) != 0) continue;
    for (const auto& sec : secrets) {
      if (sec.name == name && sec.refuse_disallowed) {
        return StageResult{403, "secret " + name + ": " + reason};
      }
    }
  }
  return std::nullopt;
}

StageResult SubstituteOrGuard(RequestContext& c) {
  if (c.plaintext) {
    if (HeadContainsSealedToken(c.head)) {
      return {403, "plain HTTP request carries a sealed token; tokens are only substituted over HTTPS"};
    }
    return {};
  }
  if (c.enabled_session != c.session || c.enabled_host != c.target.host || c.enabled_port != c.target.port) {
    c.enabled = c.session->EnabledFor(c.target.host, c.target.port);
    c.any_rules = false;
    for (const auto& sec : c.session->secrets()) c.any_rules = c.any_rules || !sec.allowed_requests.empty();
    c.enabled_session = c.session;
    c.enabled_host = c.target.host;
    c.enabled_port = c.target.port;
  }
  // allowedRequests narrow the per-host verdict for this method and path.
  if (c.any_rules) c.request_path = std::string(c.Path());
  c.request_enabled = c.any_rules
                          ? c.session->EnabledForRequest(c.target.host, c.target.port, c.head.method, c.request_path)
                          : c.enabled;
  c.any_enabled = std::find(c.request_enabled.begin(), c.request_enabled.end(), true) != c.request_enabled.end();
  c.withheld.emplace(c.session, c.request_enabled);
  if (c.withheld->active()) {
    c.withheld->ScanWhole(&c.head.target);
    for (auto& f : c.head.fields) c.withheld->ScanWhole(&f.value);
    if (c.any_rules) {
      if (auto refused = RefusedByRule(c)) return *refused;
    }
  }
  c.substitute.emplace(c.session->substitutions(), c.request_enabled, StreamReplacer::HoldBack::kMinimal);
  return SubstituteHead(&c.head, &*c.substitute);
}

std::optional<std::string> JoinedField(const std::vector<HeaderField>& fields, std::string_view name) {
  std::optional<std::string> out;
  for (const auto& f : fields) {
    if (!EqualsIgnoreCase(f.name, name)) continue;
    if (!out) {
      out = f.value;
    } else {
      *out += ", ";
      *out += f.value;
    }
  }
  return out;
}

StageResult RequestCoding(RequestContext& c) {
  // Only a body that tokens may be substituted into matters: elsewhere the
  // bytes pass unchanged (a token inside stays sealed, like any token).
  if (c.plaintext || !c.any_enabled || !c.has_body) return {};
  const auto value = JoinedField(c.head.fields, "content-encoding");
  if (!value) return {};
  // AWS SigV4 streaming: "aws-chunked" names the body's chunk-signature
  // framing (sigv4.h), not a compression; the bytes are substituted as they are.
  if (EqualsIgnoreCase(*value, "aws-chunked")) return {};
  auto codings = ParseContentEncoding(*value);
  if (!codings) {
    return {415, "request Content-Encoding is not one the proxy can decode to substitute tokens "
                 "(gzip, deflate, br, zstd)"};
  }
  c.request_codings = std::move(*codings);
  return {};
}

StageResult NegotiateCodings(RequestContext& c) {
  // A compressed response would hide an echoed value from the scrubber: ask
  // only for codings the proxy decodes (it decodes, scrubs and delivers
  // identity), always. A byte range of a coded body cannot be decoded
  // alone: range requests ask for identity.
  if (HasField(c.head.fields, "range") || HasField(c.head.fields, "if-range")) {
    RemoveFields(&c.head.fields, "accept-encoding");
    c.head.fields.push_back({"Accept-Encoding", "identity"});
    return {};
  }
  HeaderField* only = nullptr;
  size_t count = 0;
  for (auto& f : c.head.fields) {
    if (EqualsIgnoreCase(f.name, "accept-encoding")) {
      only = &f;
      ++count;
    }
  }
  std::optional<std::string> joined;
  std::optional<std::string_view> client;
  if (count == 1) {
    client = only->value;
  } else if (count > 1) {
    joined = JoinedField(c.head.fields, "accept-encoding");
    client = *joined;
  }
  if (!c.accept_cached || c.accept_in.has_value() != client.has_value() || (client && *c.accept_in != *client)) {
    c.accept_out = UpstreamAcceptEncoding(client);
    c.accept_in = client ? std::optional<std::string>(std::string(*client)) : std::nullopt;
    c.accept_cached = true;
  }
  if (count == 1) {
    only->value = c.accept_out;  // reuses the field's buffer
  } else {
    RemoveFields(&c.head.fields, "accept-encoding");
    c.head.fields.push_back({"Accept-Encoding", c.accept_out});
  }
  return {};
}

StageResult PrepareForward(RequestContext& c) {
  auto& f = c.head.fields;
  c.expect_continue = FieldHasToken(f, "expect", "100-continue");
  RemoveFields(&f, "expect");
  RemoveFields(&f, "proxy-connection");
  RemoveFields(&f, "proxy-authorization");
  RemoveFields(&f, "keep-alive");
  // Compressed websocket frames could not be scrubbed: never negotiate it.
  if (c.upgrade) RemoveFields(&f, "sec-websocket-extensions");
  if (c.head.version_minor == 0) {
    if (!HasField(f, "host")) f.push_back({"Host", c.target.host});
    if (c.client_close && !FieldHasToken(f, "connection", "close")) f.push_back({"Connection", "close"});
    c.head.version_minor = 1;
  }
  return {};
}

StageResult RunHeadStages(RequestContext& c) {
  for (HeadStage stage : kHeadStages) {
    StageResult st = stage(c);
    if (!st.ok()) return st;
  }
  return {};
}

}  // namespace osb::secretsproxy
