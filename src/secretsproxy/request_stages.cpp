#include "secretsproxy/request_stages.h"

#include <cstring>

#include "common/port.h"
#include "common/secure_memory.h"
#include "secretsproxy/host_rules.h"
#include "secretsproxy/session_registry.h"

namespace osb::secretsproxy {
namespace {

bool ValidHostText(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '.' || c == '_' || c == ':';
    if (!ok) return false;
  }
  return true;
}

const HeaderField* SingleHost(const RequestHead& head, StageResult* err) {
  const HeaderField* host = nullptr;
  for (const auto& f : head.fields) {
    if (!EqualsIgnoreCase(f.name, "host")) continue;
    if (host != nullptr) {
      *err = {400, "multiple Host headers"};
      return nullptr;
    }
    host = &f;
  }
  if (host == nullptr && head.version_minor == 1) *err = {400, "missing Host header"};
  return host;
}

}  // namespace

std::optional<Target> ParseAuthority(std::string_view a, uint16_t default_port) {
  Target t;
  t.port = default_port;
  std::string_view host;
  if (!a.empty() && a.front() == '[') {
    const size_t close = a.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = a.substr(1, close - 1);
    std::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || !ParsePort(rest.substr(1), &t.port)) return std::nullopt;
    }
    if (!IsIpLiteral(host)) return std::nullopt;
  } else {
    const size_t colon = a.rfind(':');
    host = a;
    if (colon != std::string_view::npos) {
      if (a.find(':') != colon) return std::nullopt;  // bare IPv6 must be bracketed
      host = a.substr(0, colon);
      if (!ParsePort(a.substr(colon + 1), &t.port)) return std::nullopt;
    }
    if (host.find(':') != std::string_view::npos) return std::nullopt;
  }
  if (!ValidHostText(host)) return std::nullopt;
  t.host = NormalizeHost(host);
  if (t.host.empty() || t.port == 0) return std::nullopt;
  return t;
}

std::optional<AbsoluteUrl> ParseAbsoluteUrl(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  AbsoluteUrl u;
  for (char c : url.substr(0, sep)) u.scheme += static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
  uint16_t def;
  if (u.scheme == "http") {
    def = 80;
  } else if (u.scheme == "https") {
    def = 443;
  } else {
    return std::nullopt;
  }
  std::string_view rest = url.substr(sep + 3);
  const size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no userinfo
  auto t = ParseAuthority(authority, def);
  if (!t) return std::nullopt;
  u.target = *t;
  // Built with push_back/append: GCC 12 -O2 reports a false -Wrestrict on
  // string insert/assign here.
  std::string_view origin = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (const size_t hash = origin.find('#'); hash != std::string_view::npos) origin = origin.substr(0, hash);
  if (origin.empty() || origin[0] != '/') u.origin_form.push_back('/');
  u.origin_form.append(origin.data(), origin.size());
  return u;
}

StageResult CheckMethod(const RequestHead& head) {
  if (EqualsIgnoreCase(head.method, "TRACE") || EqualsIgnoreCase(head.method, "TRACK")) {
    return {405, "TRACE/TRACK are refused"};
  }
  if (head.method == "CONNECT") return {405, "CONNECT inside a tunnel is refused"};
  return {};
}

StageResult CheckHostAgreement(RequestHead* head, const Target& target, std::string_view scheme) {
  if (head->target.front() != '/' && head->target != "*") {
    auto url = ParseAbsoluteUrl(head->target);
    if (!url || url->scheme != scheme) return {400, "invalid request target"};
    if (url->target.host != target.host || url->target.port != target.port) {
      return {421, "request URL does not name the connection's target host"};
    }
    head->target = url->origin_form;
  }
  StageResult err;
  const HeaderField* host = SingleHost(*head, &err);
  if (!err.ok()) return err;
  if (host == nullptr) return {};
  auto h = ParseAuthority(host->value, target.port);
  if (!h || h->host != target.host || h->port != target.port) {
    return {421, "Host header does not name the connection's target host"};
  }
  return {};
}

StageResult TargetFromAbsoluteForm(RequestHead* head, Target* target) {
  auto url = ParseAbsoluteUrl(head->target);
  if (!url) return {400, "a proxy request needs an absolute http:// URL (use CONNECT for https)"};
  if (url->scheme != "http") return {400, "https:// URLs must use CONNECT"};
  *target = url->target;
  return CheckHostAgreement(head, *target, "http");
}

StageResult TargetFromHost(const RequestHead& head, uint16_t default_port, Target* target) {
  StageResult err;
  const HeaderField* host = SingleHost(head, &err);
  if (!err.ok()) return err;
  if (host == nullptr) return {400, "missing Host header"};
  auto t = ParseAuthority(host->value, default_port);
  if (!t) return {400, "invalid Host header"};
  *target = *t;
  RequestHead copy = head;
  return CheckHostAgreement(&copy, *target, "http");
}

StageResult SubstituteHead(RequestHead* head, StreamReplacer* replacer) {
  // On a refusal the head is dropped unsent, so substituting in place is fine.
  if (replacer->ReplaceInPlace(&head->target)) {
    for (char c : head->target) {
      auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u >= 0x7f) return {400, "a secret value cannot be placed in the request target"};
    }
  }
  for (auto& f : head->fields) {
    if (EqualsIgnoreCase(f.name, "host") || EqualsIgnoreCase(f.name, "content-length") ||
        EqualsIgnoreCase(f.name, "transfer-encoding")) {
      continue;
    }
    if (!replacer->ReplaceInPlace(&f.value)) continue;
    for (char c : f.value) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && u != '\t') || u == 0x7f) {
        return {400, "a secret value cannot be placed in a header (control characters)"};
      }
    }
  }
  return {};
}

bool ContainsSealedToken(std::string_view data) {
  constexpr std::string_view kPrefix = "osb_sealed_";
  size_t pos = 0;
  while ((pos = data.find(kPrefix, pos)) != std::string_view::npos) {
    if (data.size() - pos >= 43 && IsSealedToken(data.substr(pos, 43))) return true;
    ++pos;
  }
  return false;
}

bool HeadContainsSealedToken(const RequestHead& head) {
  if (ContainsSealedToken(head.target)) return true;
  for (const auto& f : head.fields) {
    if (ContainsSealedToken(f.value) || ContainsSealedToken(f.name)) return true;
  }
  return false;
}

StageResult ScrubResponseHead(ResponseHead* head, StreamReplacer* scrubber) {
  // One pass over the head as the client reads it, from the reason phrase
  // on (scrubbing twice could rewrite a value found inside a token). With no
  // value that spans fields this equals scrubbing each part on its own.
  ResponseHead rest;
  rest.reason = head->reason;
  rest.fields = head->fields;
  std::string text = SerializeResponseHead(rest);  // "HTTP/1.1 0 " + the rest
  for (auto& f : rest.fields) SecureWipe(f.name), SecureWipe(f.value);
  text.erase(0, text.find(' ', 9) + 1);
  if (!scrubber->ContainsEnabled(text)) return {};
  std::string scrubbed = "HTTP/1.1 " + std::to_string(head->status) + " " + scrubber->ReplaceAll(text);
  SecureWipe(text);
  ResponseHead parsed;
  const HeadLimits limits{scrubbed.size(), scrubbed.size(), head->fields.size() + 1};
  const ParseOutcome r = ParseResponseHead(scrubbed, limits, &parsed);
  SecureWipe(scrubbed);
  SecureWipe(head->reason);
  for (auto& f : head->fields) SecureWipe(f.name), SecureWipe(f.value);
  if (r.status != ParseStatus::kComplete) return {502, "upstream response head cannot be scrubbed"};
  head->reason = std::move(parsed.reason);
  head->fields = std::move(parsed.fields);
  return {};
}

}  // namespace osb::secretsproxy
