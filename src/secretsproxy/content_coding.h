// HTTP content-codings (RFC 9110 section 8.4): which codings the proxy
// understands, parsing `Content-Encoding`, and the `Accept-Encoding` the
// proxy sends upstream. Pure functions; thread-safe.
//
// Why: the scrubber must see a response body as the sandbox will finally
// read it. A compressed body hides any value from it, so the proxy asks the
// upstream only for codings it can decode (UpstreamAcceptEncoding), decodes
// what arrives (content_decoder.h), scrubs, and delivers identity. A body in
// any other coding is refused, never passed through unscrubbed.
//
// Coding names that reach errors come from the upstream (or the sandbox):
// the caller scrubs them like any other response byte before they appear in
// a response, an audit line or a log (ParseContentEncoding keeps them short
// and printable, but a short value could still be one).
//
// Use in the proxy (the response decode + scrub stage and its request side):
//   request:  Accept-Encoding := UpstreamAcceptEncoding(client's, lines
//             joined) — always set, never the client's; "identity" when the
//             request has Range/If-Range (a byte range of a coded body
//             cannot be decoded alone). Sec-WebSocket-Extensions must not
//             offer permessage-deflate (the same hole, in frames).
//             A body with Content-Encoding: parse (unsupported -> 415 naming
//             the coding), decode (ContentDecoder or DecodeAll; corrupt ->
//             400, over budget -> 413), substitute, re-encode with the same
//             codings (ContentEncoder) and fix Content-Length / re-chunk.
//   response: after the head is scrubbed, parse Content-Encoding. Unsupported
//             or malformed, on a host any secret may reach -> 502 "response
//             content-coding X cannot be scrubbed" (audited). Known ->
//             decode each body piece in bounded reads, scrub, deliver
//             identity: drop Content-Encoding and Content-Length, send
//             chunked (close-delimited for HTTP/1.0); weaken a strong ETag
//             (W/). A 206 with a coding -> 502. A decode error after the
//             head went out -> close without the last chunk (the client sees
//             a truncated body), audited.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace osb::secretsproxy {

// The codings the proxy decodes and encodes. `x-gzip` is an alias of gzip;
// `deflate` is the zlib format (RFC 1950), and raw deflate (RFC 1951) sent
// under the same name, as some servers do and browsers accept, is detected.
enum class Coding { kGzip, kDeflate, kBrotli, kZstd };

// The canonical token: "gzip", "deflate", "br", "zstd".
std::string_view CodingName(Coding c);

// At most this many codings may be stacked in one Content-Encoding; more is
// an error (each layer costs a decoder's memory).
inline constexpr size_t kMaxStackedCodings = 4;

// Parses a Content-Encoding field value into the codings in the order they
// were APPLIED (RFC 9110: "gzip, br" = gzipped, then brotli'd; decode br
// first). Several field lines are one list: join them with ", " first.
//   - names are case-insensitive; OWS around elements and empty elements
//     ("gzip,,br", ", gzip") are allowed; "identity" is dropped; an empty or
//     all-identity value yields an empty list (the body is not encoded);
//   - anything else is an error whose message names the coding:
//       unsupported content-coding "compress"
//     Non-token names (parameters, quotes, control bytes) and names longer
//     than 32 bytes are reported as `malformed content-coding` without the
//     name; more than kMaxStackedCodings codings is an error too.
//   On an unsupported coding, *bad_name (if given) receives its name alone,
//   lower-cased, for a refusal such as "response content-coding X cannot be
//   scrubbed"; it is left empty for the other errors.
Result<std::vector<Coding>> ParseContentEncoding(std::string_view value, std::string* bad_name = nullptr);

// The Content-Encoding value for a list of codings ("gzip, br"); "" for none.
std::string FormatContentEncoding(const std::vector<Coding>& codings);

// The Accept-Encoding value the proxy sends upstream in place of the
// client's. Choice (sound, and cheapest): the codings the proxy decodes
// (gzip, deflate, br, zstd) that the client also accepts, in that order,
// without q-values, followed by nothing else; "identity" when none is left.
//   - `client` absent (no Accept-Encoding field) -> "identity": a client
//     that did not ask for compression costs the proxy no decoding;
//   - q-values: q=0 (also "0.0", "0.000") refuses a coding; any other valid
//     weight accepts it; an element with an invalid weight is ignored;
//   - "*" accepts every coding not named explicitly (so "*" alone offers all
//     four and "gzip;q=0, *" offers deflate, br, zstd); "*;q=0" refuses them;
//   - "x-gzip" counts as gzip; unknown codings (compress, ...) are dropped;
//   - "identity;q=0" is not forwarded: the proxy always accepts identity
//     from the upstream, and delivers identity to the client in any case.
// Because the result only ever names codings the client accepted, a proxy
// that re-encodes into the upstream's coding hands the client a coding it
// asked for; because it only names codings the proxy decodes, an upstream
// that honours it never sends one the proxy must refuse.
std::string UpstreamAcceptEncoding(std::optional<std::string_view> client);

}  // namespace osb::secretsproxy
