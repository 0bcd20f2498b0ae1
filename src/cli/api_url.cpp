#include "cli/api_url.h"

#include <algorithm>
#include <cctype>

#include "common/percent_encoding.h"

namespace osb::cli {

namespace {

Error Bad(std::string_view url, std::string_view why) {
  return MakeError(ErrorCode::kInvalidArgument,
                   "invalid API URL '" + std::string(url) + "': " + std::string(why));
}

bool IsAllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

std::string ApiUrl::ToString() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return (tls ? "https://" : "http://") + h + ":" + port + base_path;
}

Result<ApiUrl> ParseApiUrl(std::string_view url) {
  ApiUrl out;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    out.tls = true;
    rest = url.substr(8);
  } else {
    return Bad(url, "must start with http:// or https://");
  }
  for (char c : rest) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return Bad(url, "contains a space or control character");
  }
  if (rest.find_first_of("?#@") != std::string_view::npos) {
    return Bad(url, "must not contain a query, fragment or user info");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.base_path = std::string(path);

  std::string_view port;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Bad(url, "unterminated IPv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Bad(url, "unexpected characters after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) return Bad(url, "empty port");
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      authority = authority.substr(0, colon);
      if (port.empty()) return Bad(url, "empty port");
    }
    if (authority.find(':') != std::string_view::npos) {
      return Bad(url, "IPv6 addresses must be written in brackets, e.g. http://[::1]:8080");
    }
    out.host = std::string(authority);
  }
  if (out.host.empty()) return Bad(url, "missing host");
  if (port.empty()) {
    out.port = out.tls ? "443" : "80";
  } else {
    if (!IsAllDigits(port) || port.size() > 5 || std::stoi(std::string(port)) < 1 ||
        std::stoi(std::string(port)) > 65535) {
      return Bad(url, "port must be a number from 1 to 65535");
    }
    out.port = std::string(port);
  }
  return out;
}

std::string EncodePathSegment(std::string_view segment) {
  // "." and ".." would be read as path navigation by some servers/proxies.
  if (segment == "." || segment == "..") return segment == "." ? "%2E" : "%2E%2E";
  return EncodeQueryValue(segment);
}

std::string EncodeQueryValue(std::string_view value, bool keep_slash) { return PercentEncode(value, keep_slash); }

}  // namespace osb::cli
