#include "api/router.h"

#include <spdlog/spdlog.h>

#include <optional>

#include "common/hex.h"

namespace osb::api {
namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;  // skip the leading '/'
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto end = slash == std::string::npos ? path.size() : slash;
    out.push_back(path.substr(start, end - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

// 400 for a segment the router will not match on: malformed escapes, dot
// segments (raw or encoded), encoded '/' or NUL. Nothing is normalised, so
// the path authenticated is exactly the path routed.
std::optional<std::string> SegmentError(const std::string& segment) {
  auto decoded = PercentDecode(segment);
  if (!decoded) return "malformed percent-encoding in path segment";
  if (*decoded == "." || *decoded == "..") return "dot segments are not allowed in the path";
  if (decoded->find('/') != std::string::npos) return "an encoded '/' is not allowed in a path segment";
  if (decoded->find('\0') != std::string::npos) return "an encoded NUL is not allowed in the path";
  return std::nullopt;
}

}  // namespace

std::optional<std::string> OriginFormError(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    return std::string("request target must be a path starting with '/' (origin-form)");
  }
  for (const char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return std::string("request target contains a control byte or space");
    if (c == '#') return std::string("request target must not contain a fragment ('#')");
  }
  return std::nullopt;
}

std::optional<std::string> PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = HexDigitValue(s[i + 1]), lo = HexDigitValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

const char* KeyScopeName(KeyScope scope) { return scope == KeyScope::kAdmin ? "admin" : "sandbox"; }

std::optional<KeyScope> ParseKeyScope(std::string_view name) {
  if (name == "admin") return KeyScope::kAdmin;
  if (name == "sandbox") return KeyScope::kSandbox;
  return std::nullopt;
}

void Router::Add(const std::string& method, const std::string& pattern, Handler handler, KeyScope required) {
  routes_.push_back({method, pattern, Split(pattern), std::move(handler), false, required});
}

void Router::AddPublic(const std::string& method, const std::string& pattern, Handler handler) {
  routes_.push_back({method, pattern, Split(pattern), std::move(handler), true, KeyScope::kAdmin});
}

std::optional<KeyScope> Router::RequiredScope(const std::string& method, const std::string& pattern) const {
  for (const auto& r : routes_) {
    if (r.method == method && r.pattern == pattern) return r.is_public ? std::nullopt : std::optional(r.required);
  }
  return std::nullopt;
}

void Router::AddStreaming(const std::string& method, const std::string& pattern, Handler handler,
                          KeyScope required) {
  routes_.push_back({method, pattern, Split(pattern), std::move(handler), false, required, true});
}

bool Router::IsStreaming(const std::string& method, const std::string& path) const {
  if (OriginFormError(path)) return false;
  const auto segments = Split(path);
  for (const auto& route : routes_) {
    if (route.method == method && Match(route, segments, nullptr)) return route.streams_body;
  }
  return false;
}

std::vector<std::pair<std::string, std::string>> Router::Routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : routes_) out.emplace_back(r.method, r.pattern);
  return out;
}

bool Router::Match(const Route& route, const std::vector<std::string>& segments,
                   std::map<std::string, std::string>* params) {
  if (route.segments.size() != segments.size()) return false;
  std::map<std::string, std::string> found;
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& want = route.segments[i];
    if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
      if (segments[i].empty()) return false;
      auto decoded = PercentDecode(segments[i]);
      if (!decoded) return false;
      found[want.substr(1, want.size() - 2)] = std::move(*decoded);
    } else if (want != segments[i]) {
      return false;
    }
  }
  if (params) *params = std::move(found);
  return true;
}

Response Router::Dispatch(Request& request) const {
  try {
    if (auto bad = OriginFormError(request.path)) return ErrorResponse(400, *bad);
    const auto segments = Split(request.path);
    for (const auto& segment : segments) {
      if (auto bad = SegmentError(segment)) return ErrorResponse(400, *bad);
    }
    const Route* found = nullptr;
    std::string allow;
    for (const auto& route : routes_) {
      if (!Match(route, segments, nullptr)) continue;
      if (route.method == request.method) {
        if (found == nullptr) found = &route;
      } else if (allow.find(route.method) == std::string::npos) {
        allow += (allow.empty() ? "" : ", ") + route.method;
      }
    }
    if (found == nullptr || !found->is_public) {
      if (!authenticate_) return ErrorResponse(500, "internal error");
      auto caller = authenticate_(request);
      if (!caller) return ErrorResponse(caller.error());
      if (found != nullptr && caller->scope < found->required) {
        return ErrorResponse(403, std::string("this route requires an API key with scope '") +
                                      KeyScopeName(found->required) + "'; this key has scope '" +
                                      KeyScopeName(caller->scope) + "'");
      }
      request.org_id = caller->org_id;
    }
    if (found != nullptr) {
      Match(*found, segments, &request.params);
      return found->handler(request);
    }
    if (allow.empty()) return ErrorResponse(404, "no route for " + request.path);
    Response r = ErrorResponse(405, "method " + request.method + " is not allowed here (allowed: " + allow + ")");
    r.headers.emplace_back("Allow", allow);
    return r;
  } catch (const std::exception& e) {
    spdlog::error("handler for {} {} threw: {}", request.method, request.path, e.what());
    return ErrorResponse(500, "internal error");
  }
}

}  // namespace osb::api
