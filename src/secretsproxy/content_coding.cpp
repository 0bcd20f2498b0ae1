#include "secretsproxy/content_coding.h"

#include <array>

namespace osb::secretsproxy {
namespace {

constexpr size_t kMaxNameLength = 32;

bool IsTchar(char c) {  // RFC 9110 section 5.6.2
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Splits a comma list, calling f(element) for each trimmed, non-empty one.
template <typename F>
void ForEachElement(std::string_view value, F&& f) {
  while (true) {
    const size_t comma = value.find(',');
    std::string_view e = Trim(value.substr(0, comma));
    if (!e.empty()) f(e);
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

std::optional<Coding> Known(std::string_view lower) {
  if (lower == "gzip" || lower == "x-gzip") return Coding::kGzip;
  if (lower == "deflate") return Coding::kDeflate;
  if (lower == "br") return Coding::kBrotli;
  if (lower == "zstd") return Coding::kZstd;
  return std::nullopt;
}

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ). Returns
// nullopt when invalid, else whether the weight is above zero.
std::optional<bool> PositiveQ(std::string_view q) {
  if (q.empty() || q.size() > 5) return std::nullopt;
  if (q[0] != '0' && q[0] != '1') return std::nullopt;
  if (q.size() > 1) {
    if (q[1] != '.') return std::nullopt;
    for (size_t i = 2; i < q.size(); ++i) {
      if (q[i] < '0' || q[i] > '9') return std::nullopt;
      if (q[0] == '1' && q[i] != '0') return std::nullopt;
    }
  }
  if (q[0] == '1') return true;
  for (size_t i = 2; i < q.size(); ++i) {
    if (q[i] != '0') return true;
  }
  return false;
}

}  // namespace

std::string_view CodingName(Coding c) {
  switch (c) {
    case Coding::kGzip: return "gzip";
    case Coding::kDeflate: return "deflate";
    case Coding::kBrotli: return "br";
    case Coding::kZstd: return "zstd";
  }
  return "?";
}

Result<std::vector<Coding>> ParseContentEncoding(std::string_view value, std::string* bad_name) {
  if (bad_name) bad_name->clear();
  std::vector<Coding> codings;
  std::optional<Error> error;
  ForEachElement(value, [&](std::string_view e) {
    if (error) return;
    bool token = e.size() <= kMaxNameLength;
    for (char c : e) token = token && IsTchar(c);
    if (!token) {
      error = MakeError(ErrorCode::kInvalidArgument, "malformed content-coding");
      return;
    }
    const std::string name = Lower(e);
    if (name == "identity") return;
    const auto known = Known(name);
    if (!known) {
      error = MakeError(ErrorCode::kInvalidArgument, "unsupported content-coding \"" + name + "\"");
      if (bad_name) *bad_name = name;
      return;
    }
    if (codings.size() == kMaxStackedCodings) {
      error = MakeError(ErrorCode::kInvalidArgument,
                        "more than " + std::to_string(kMaxStackedCodings) + " stacked content-codings");
      return;
    }
    codings.push_back(*known);
  });
  if (error) return *error;
  return codings;
}

std::string FormatContentEncoding(const std::vector<Coding>& codings) {
  std::string out;
  for (Coding c : codings) {
    if (!out.empty()) out += ", ";
    out += CodingName(c);
  }
  return out;
}

std::string UpstreamAcceptEncoding(std::optional<std::string_view> client) {
  if (!client) return "identity";
  constexpr std::array<Coding, 4> kOffer = {Coding::kGzip, Coding::kDeflate, Coding::kBrotli, Coding::kZstd};
  // Per coding: explicitly accepted / refused; the latest explicit element
  // wins, as does the latest "*".
  std::array<std::optional<bool>, 4> named{};
  std::optional<bool> star;
  ForEachElement(*client, [&](std::string_view e) {
    const size_t semi = e.find(';');
    const std::string name = Lower(Trim(e.substr(0, semi)));
    bool accept = true;
    if (semi != std::string_view::npos) {
      // Parameters: only "q" means anything; a bad weight voids the element.
      std::string_view params = e.substr(semi + 1);
      while (true) {
        const size_t next = params.find(';');
        std::string_view p = Trim(params.substr(0, next));
        if (p.size() >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
          const auto q = PositiveQ(p.substr(2));
          if (!q) return;
          accept = *q;
        }
        if (next == std::string_view::npos) break;
        params.remove_prefix(next + 1);
      }
    }
    if (name == "*") {
      star = accept;
      return;
    }
    const auto known = Known(name);
    if (!known) return;
    named[static_cast<size_t>(*known)] = accept;
  });
  std::string out;
  for (Coding c : kOffer) {
    const auto& n = named[static_cast<size_t>(c)];
    const bool accepted = n ? *n : star.value_or(false);
    if (!accepted) continue;
    if (!out.empty()) out += ", ";
    out += CodingName(c);
  }
  return out.empty() ? "identity" : out;
}

}  // namespace osb::secretsproxy
