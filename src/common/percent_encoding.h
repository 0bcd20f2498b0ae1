// RFC 3986 percent-encoding, the one encoder of the project: every byte but
// the unreserved characters (ALPHA DIGIT - . _ ~, ASCII only, whatever the
// locale) — and '/' when keep_slash — becomes %XX with upper-case hex.
// These are exactly AWS SigV4's canonical URI-encoding rules (sigv4.h
// UriEncode), valid for an application/x-www-form-urlencoded body (the
// OAuth refresh request: a decoder accepts %XX for any byte, %20 for a
// space) and for URL query values and path segments (the CLI).
#pragma once

#include <string>
#include <string_view>

namespace osb {

bool IsUnreservedByte(unsigned char c);
std::string PercentEncode(std::string_view s, bool keep_slash = false);

}  // namespace osb
