// Parsing the API base URL (`--api-url`, OPENSANDBOX_API_URL, config file).
//
// Accepted: http://HOST[:PORT][/BASE] and https://HOST[:PORT][/BASE], HOST a
// name, an IPv4 address or a bracketed IPv6 address. Default ports 80 / 443.
// Anything else is a kInvalidArgument error naming the offending value.
// A trailing slash on BASE is dropped so "/api/..." can be appended.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace osb::cli {

struct ApiUrl {
  bool tls = false;
  std::string host;       // without brackets for IPv6
  std::string port;       // always set
  std::string base_path;  // "" or "/prefix" (no trailing slash)

  // For messages: scheme://host:port/base
  std::string ToString() const;
};

Result<ApiUrl> ParseApiUrl(std::string_view url);

// Percent-encodes one path segment (RFC 3986 unreserved characters pass).
std::string EncodePathSegment(std::string_view segment);
// Percent-encodes a query parameter's value the same way (RFC 3986
// unreserved characters pass; `keep_slash` keeps '/' readable in a path):
// common/percent_encoding.h PercentEncode.
std::string EncodeQueryValue(std::string_view value, bool keep_slash = false);

}  // namespace osb::cli
