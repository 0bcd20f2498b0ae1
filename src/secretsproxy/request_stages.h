// Request stages that decide before anything is forwarded. Each is a pure
// function over a parsed head so it can be tested alone:
//   CheckMethod        TRACE/TRACK (would reflect substituted secrets) and a
//                      nested CONNECT are refused with 405.
//   ResolveTarget      which upstream a request names (absolute-form URL,
//                      Host header), rewritten to origin-form.
//   CheckHostAgreement Host (and absolute-form authority) must name the
//                      CONNECT/SNI target, otherwise 421.
//   SubstituteHead     tokens -> values in the request target and every header
//                      value except Host/Content-Length/Transfer-Encoding; a
//                      value that would put CR, LF, NUL or other control bytes
//                      into the head (or SP into the request target) is
//                      refused with 400 instead of smuggling a header.
//   ScrubResponseHead  values -> tokens in the whole response head.
//   ContainsSealedToken plaintext guard: any osb_sealed_<32 hex> string.
// A StageResult with status 0 means "continue"; otherwise the HTTP status to
// answer with and a fixed reason text (never contains a value).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "secretsproxy/http_message.h"
#include "secretsproxy/stream_replacer.h"

namespace osb::secretsproxy {

struct Target {
  std::string host;  // normalized (lower case, no trailing dot, no brackets)
  uint16_t port = 0;
  bool operator==(const Target&) const = default;
};

struct StageResult {
  int status = 0;
  std::string reason;
  bool ok() const { return status == 0; }
};

// "host:port", "[v6]:port", or "host" (default_port). nullopt if malformed.
std::optional<Target> ParseAuthority(std::string_view authority, uint16_t default_port);

struct AbsoluteUrl {
  std::string scheme;  // lower case
  Target target;
  std::string origin_form;  // "/path?query" ("/" when empty)
};
std::optional<AbsoluteUrl> ParseAbsoluteUrl(std::string_view url);

StageResult CheckMethod(const RequestHead& head);

// For a fixed (CONNECT/SNI) target: validates Host and an absolute-form URL,
// rewriting the latter to origin-form.
StageResult CheckHostAgreement(RequestHead* head, const Target& target, std::string_view scheme);

// For plain HTTP on the explicit port: the absolute-form URL names the target.
StageResult TargetFromAbsoluteForm(RequestHead* head, Target* target);
// For redirected plain HTTP: the Host header names the target.
StageResult TargetFromHost(const RequestHead& head, uint16_t default_port, Target* target);

StageResult SubstituteHead(RequestHead* head, StreamReplacer* replacer);

// Response direction: scrubs the whole response head that goes to the
// sandbox — the reason phrase, every header name and every value. A name
// that contained a value keeps its other bytes with the value replaced by its
// token (token characters are valid in a field name), so nothing is dropped
// silently and the name no longer carries the value. The head is scrubbed as
// the text the client reads, from the reason phrase on, in one pass
// (leftmost-longest), and parsed again; so a value that spans fields (it
// contains ": " or CRLF) is found too, and when the result no longer parses
// the response is refused (502). The version and the 3-digit status code are
// parsed numbers and left as they are.
StageResult ScrubResponseHead(ResponseHead* head, StreamReplacer* scrubber);

bool ContainsSealedToken(std::string_view data);
bool HeadContainsSealedToken(const RequestHead& head);

}  // namespace osb::secretsproxy
