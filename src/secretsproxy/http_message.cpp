#include "secretsproxy/http_message.h"

#include <cstring>

namespace osb::secretsproxy {
namespace {

bool IsTchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

bool IsFieldValueChar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

std::string_view Trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

ParseOutcome SplitHeadInto(std::string_view buf, const HeadLimits& limits, std::string_view* start_line,
                           std::vector<HeaderField>* fields, size_t* count) {
  ParseOutcome r;
  size_t pos = 0;
  // Tolerate (a bounded number of) empty lines before the start line (RFC 9112 2.2).
  for (int i = 0; i < 4 && buf.size() - pos >= 2 && buf[pos] == '\r' && buf[pos + 1] == '\n'; ++i) pos += 2;
  bool first = true;
  while (true) {
    const size_t nl = buf.find('\n', pos);
    const size_t limit_end = nl == std::string_view::npos ? buf.size() : nl;
    if (limit_end - pos > limits.max_line) return {ParseStatus::kTooLarge, 0, "header line too long"};
    if (limit_end > limits.max_head) return {ParseStatus::kTooLarge, 0, "header section too large"};
    if (nl == std::string_view::npos) {
      // Any CR not followed by LF inside the unterminated tail is already bad.
      for (size_t i = pos; i + 1 < buf.size(); ++i) {
        if (buf[i] == '\r') return {ParseStatus::kBad, 0, "bare CR in header section"};
      }
      return r;  // need more
    }
    if (nl == pos || buf[nl - 1] != '\r') return {ParseStatus::kBad, 0, "bare LF in header section"};
    std::string_view line = buf.substr(pos, nl - 1 - pos);
    if (line.find('\r') != std::string_view::npos) return {ParseStatus::kBad, 0, "bare CR in header section"};
    pos = nl + 1;
    if (first) {
      if (line.empty()) return {ParseStatus::kBad, 0, "empty start line"};
      *start_line = line;
      first = false;
      continue;
    }
    if (line.empty()) break;
    if (line[0] == ' ' || line[0] == '\t') return {ParseStatus::kBad, 0, "obsolete line folding"};
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return {ParseStatus::kBad, 0, "malformed header field"};
    for (size_t i = 0; i < colon; ++i) {
      if (!IsTchar(static_cast<unsigned char>(line[i]))) {
        return {ParseStatus::kBad, 0, "invalid header field name"};
      }
    }
    std::string_view value = line.substr(colon + 1);
    for (char c : value) {
      if (!IsFieldValueChar(static_cast<unsigned char>(c))) {
        return {ParseStatus::kBad, 0, "invalid character in header field value"};
      }
    }
    if (*count >= limits.max_fields) return {ParseStatus::kTooLarge, 0, "too many header fields"};
    if (*count == fields->size()) fields->emplace_back();
    HeaderField& f = (*fields)[(*count)++];
    f.name.assign(line.substr(0, colon));
    f.value.assign(Trim(value));
  }
  r.status = ParseStatus::kComplete;
  r.consumed = pos;
  return r;
}

// Splits the head into lines; the first line goes to *start_line. Reuses the
// strings already in *fields (a connection parses one head after another).
ParseOutcome SplitHead(std::string_view buf, const HeadLimits& limits, std::string_view* start_line,
                       std::vector<HeaderField>* fields) {
  size_t count = 0;
  ParseOutcome r = SplitHeadInto(buf, limits, start_line, fields, &count);
  if (r.status == ParseStatus::kComplete) fields->resize(count);
  return r;
}
bool ParseVersion(std::string_view v, int* minor) {
  if (v == "HTTP/1.1") return *minor = 1, true;
  if (v == "HTTP/1.0") return *minor = 0, true;
  return false;
}

// Parses a Content-Length value: 1*DIGIT, at most 18 digits.
bool ParseLength(std::string_view v, uint64_t* out) {
  if (v.empty() || v.size() > 18) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

std::optional<std::string> CommonFraming(const std::vector<HeaderField>& fields, bool allow_te,
                                         BodyFraming* out) {
  const HeaderField* te = nullptr;
  const HeaderField* cl = nullptr;
  size_t te_count = 0, cl_count = 0;
  for (const auto& f : fields) {
    if (EqualsIgnoreCase(f.name, "transfer-encoding")) {
      te = &f;
      ++te_count;
    } else if (EqualsIgnoreCase(f.name, "content-length")) {
      cl = &f;
      ++cl_count;
    }
  }
  if (te_count > 0) {
    if (!allow_te) return "Transfer-Encoding in an HTTP/1.0 message";
    if (cl_count > 0) return "both Transfer-Encoding and Content-Length";
    if (te_count != 1 || !EqualsIgnoreCase(te->value, "chunked")) {
      return "Transfer-Encoding other than exactly \"chunked\"";
    }
    out->kind = BodyFraming::kChunked;
    return std::nullopt;
  }
  if (cl_count > 1) return "duplicate Content-Length";
  if (cl_count == 1) {
    if (!ParseLength(cl->value, &out->length)) return "invalid Content-Length";
    out->kind = BodyFraming::kContentLength;
    return std::nullopt;
  }
  out->kind = BodyFraming::kNone;
  return std::nullopt;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::vector<const HeaderField*> FindFields(const std::vector<HeaderField>& fields, std::string_view name) {
  std::vector<const HeaderField*> out;
  for (const auto& f : fields) {
    if (EqualsIgnoreCase(f.name, name)) out.push_back(&f);
  }
  return out;
}

void RemoveFields(std::vector<HeaderField>* fields, std::string_view name) {
  std::erase_if(*fields, [&](const HeaderField& f) { return EqualsIgnoreCase(f.name, name); });
}

bool HasField(const std::vector<HeaderField>& fields, std::string_view name) {
  for (const auto& f : fields) {
    if (EqualsIgnoreCase(f.name, name)) return true;
  }
  return false;
}

bool FieldHasToken(const std::vector<HeaderField>& fields, std::string_view name, std::string_view token) {
  for (const auto& f : fields) {
    if (!EqualsIgnoreCase(f.name, name)) continue;
    std::string_view v = f.value;
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view item = Trim(v.substr(0, comma));
      if (EqualsIgnoreCase(item, token)) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

ParseOutcome ParseRequestHead(std::string_view buf, const HeadLimits& limits, RequestHead* out) {
  std::string_view line;
  ParseOutcome r = SplitHead(buf, limits, &line, &out->fields);
  if (r.status != ParseStatus::kComplete) return r;
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return {ParseStatus::kBad, 0, "malformed request line"};
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (method.empty() || target.empty()) return {ParseStatus::kBad, 0, "malformed request line"};
  for (char c : method) {
    if (!IsTchar(static_cast<unsigned char>(c))) return {ParseStatus::kBad, 0, "invalid method"};
  }
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return {ParseStatus::kBad, 0, "invalid character in request target"};
  }
  if (!ParseVersion(line.substr(sp2 + 1), &out->version_minor)) {
    return {ParseStatus::kBad, 0, "unsupported HTTP version"};
  }
  out->method.assign(method);
  out->target.assign(target);
  return r;
}

ParseOutcome ParseResponseHead(std::string_view buf, const HeadLimits& limits, ResponseHead* out) {
  std::string_view line;
  ParseOutcome r = SplitHead(buf, limits, &line, &out->fields);
  if (r.status != ParseStatus::kComplete) return r;
  if (line.size() < 12 || !ParseVersion(line.substr(0, 8), &out->version_minor) || line[8] != ' ') {
    return {ParseStatus::kBad, 0, "malformed status line"};
  }
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return {ParseStatus::kBad, 0, "malformed status code"};
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || (line.size() > 12 && line[12] != ' ')) return {ParseStatus::kBad, 0, "malformed status line"};
  out->status = status;
  out->reason.assign(line.size() > 13 ? line.substr(13) : std::string_view());
  return r;
}

std::optional<std::string> AnalyzeRequestFraming(const RequestHead& head, BodyFraming* out) {
  return CommonFraming(head.fields, head.version_minor == 1, out);
}

std::optional<std::string> AnalyzeResponseFraming(const ResponseHead& head, std::string_view request_method,
                                                  BodyFraming* out) {
  if (EqualsIgnoreCase(request_method, "HEAD") || head.status < 200 || head.status == 204 ||
      head.status == 304) {
    out->kind = BodyFraming::kNone;
    return std::nullopt;
  }
  auto err = CommonFraming(head.fields, head.version_minor == 1, out);
  if (err) return err;
  if (out->kind == BodyFraming::kNone) out->kind = BodyFraming::kUntilClose;
  return std::nullopt;
}

namespace {
size_t FieldsSize(const std::vector<HeaderField>& fields) {
  size_t n = 2;
  for (const auto& f : fields) n += f.name.size() + f.value.size() + 4;
  return n;
}

void AppendFields(std::string& s, const std::vector<HeaderField>& fields) {
  for (const auto& f : fields) {
    s += f.name;
    s += ": ";
    s += f.value;
    s += "\r\n";
  }
  s += "\r\n";
}
}  // namespace

std::string SerializeRequestHead(const RequestHead& head, size_t extra_capacity) {
  std::string s;
  s.reserve(head.method.size() + head.target.size() + 12 + FieldsSize(head.fields) + extra_capacity);
  s += head.method;
  s += ' ';
  s += head.target;
  s += head.version_minor == 1 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n";
  AppendFields(s, head.fields);
  return s;
}

std::string SerializeResponseHead(const ResponseHead& head, size_t extra_capacity) {
  std::string s;
  s.reserve(16 + head.reason.size() + FieldsSize(head.fields) + extra_capacity);
  s += head.version_minor == 1 ? "HTTP/1.1 " : "HTTP/1.0 ";
  s += std::to_string(head.status);
  s += ' ';
  s += head.reason;
  s += "\r\n";
  AppendFields(s, head.fields);
  return s;
}

}  // namespace osb::secretsproxy
