// Strict HTTP/1.1 message heads for the proxy (requests from the untrusted
// sandbox, responses from upstreams). Hand-written so every request-smuggling
// rule is explicit (RFC 9112):
//   - lines end in CRLF; a bare LF or a bare CR anywhere in the head -> 400
//   - obsolete line folding (a header line starting with SP/HTAB) -> 400
//   - whitespace between field name and colon, empty/invalid names -> 400
//   - control characters (other than HTAB) in a field value -> 400
//   - a line longer than max_line or a head longer than max_head -> 431
// Framing (AnalyzeRequestFraming / AnalyzeResponseFraming):
//   - Transfer-Encoding other than exactly one "chunked" -> 400
//   - Transfer-Encoding together with Content-Length -> 400
//   - more than one Content-Length, or one that is not 1*DIGIT -> 400
// Pure functions, no I/O, never throw; errors are values with a reason that
// names the offending part but never echoes header values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace osb::secretsproxy {

struct HeaderField {
  std::string name;
  std::string value;
};

struct HeadLimits {
  size_t max_line = 16 * 1024;
  size_t max_head = 64 * 1024;
  size_t max_fields = 200;
};

enum class ParseStatus { kNeedMore, kComplete, kBad, kTooLarge };

struct ParseOutcome {
  ParseStatus status = ParseStatus::kNeedMore;
  size_t consumed = 0;     // head length including the final CRLF (kComplete)
  std::string reason;      // for kBad / kTooLarge
};

struct RequestHead {
  std::string method;
  std::string target;
  int version_minor = 1;   // HTTP/1.x
  std::vector<HeaderField> fields;
};

struct ResponseHead {
  int version_minor = 1;
  int status = 0;
  std::string reason;
  std::vector<HeaderField> fields;
};

// *out is complete only on kComplete (otherwise its contents are unspecified);
// reusing one object for a connection's successive heads reuses its strings.
ParseOutcome ParseRequestHead(std::string_view buf, const HeadLimits& limits, RequestHead* out);
ParseOutcome ParseResponseHead(std::string_view buf, const HeadLimits& limits, ResponseHead* out);

struct BodyFraming {
  enum Kind { kNone, kContentLength, kChunked, kUntilClose } kind = kNone;
  uint64_t length = 0;
};

// On error returns a reason (the caller answers 400 / 502).
std::optional<std::string> AnalyzeRequestFraming(const RequestHead& head, BodyFraming* out);
std::optional<std::string> AnalyzeResponseFraming(const ResponseHead& head, std::string_view request_method,
                                                  BodyFraming* out);

// Case-insensitive field helpers.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
std::vector<const HeaderField*> FindFields(const std::vector<HeaderField>& fields, std::string_view name);
bool HasField(const std::vector<HeaderField>& fields, std::string_view name);
void RemoveFields(std::vector<HeaderField>* fields, std::string_view name);
// True when a comma-separated field (e.g. Connection) contains `token`.
bool FieldHasToken(const std::vector<HeaderField>& fields, std::string_view name, std::string_view token);

// extra_capacity: room reserved for a body the caller appends.
std::string SerializeRequestHead(const RequestHead& head, size_t extra_capacity = 0);
std::string SerializeResponseHead(const ResponseHead& head, size_t extra_capacity = 0);

}  // namespace osb::secretsproxy
