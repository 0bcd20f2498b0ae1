// ContentEncoder: streaming encoder for a stack of content-codings, so the
// proxy may re-encode a body after scrubbing (responses) or substitution
// (content-encoded request bodies) instead of delivering identity.
//
//   auto enc = ContentEncoder::Create({Coding::kGzip});
//   enc->Write(piece, &out);   // out may stay empty: the coder buffers
//   enc->Flush(&out);          // all written so far is decodable (streams, SSE)
//   enc->Finish(&out);         // end of body; the encoder is spent
//
// Contract: output is appended to *out; each call appends about as much as
// the input it was given plus a few bytes (compression never needs a caller
// buffer larger than that), so memory stays bounded by the caller's pieces
// and the library state (gzip/deflate ~270 KiB; br ~1-3
// MiB at quality 4, window 2^20; zstd ~1-2 MiB at level 3). Errors (only
// allocation failures in practice) are values; nothing throws except
// std::bad_alloc. Output decodes with ContentDecoder and with the standard
// tools (gzip -d, zstd -d, brotli -d, browsers). "deflate" is written in the
// zlib format (RFC 1950), the interoperable one. Note for callers: the
// compressed length depends on the content (CRIME/BREACH); encode only bytes
// that are already scrubbed. Not thread-safe; one per body.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "secretsproxy/content_coding.h"

namespace osb::secretsproxy {

struct EncoderOptions {
  int zlib_level = 1;   // gzip and deflate, 1..9 (1: the proxy's CPU matters more than bytes)
  int br_quality = 4;   // 0..11 (11 is far too slow for streaming)
  int br_window_log = 20;
  int zstd_level = 3;
};

class ContentEncoder {
 public:
  // `codings` in the order to apply them (the Content-Encoding order). An
  // empty list copies its input.
  static Result<std::unique_ptr<ContentEncoder>> Create(const std::vector<Coding>& codings,
                                                        const EncoderOptions& options = {});
  virtual ~ContentEncoder() = default;

  virtual Status Write(std::string_view in, std::string* out) = 0;
  virtual Status Flush(std::string* out) = 0;
  virtual Status Finish(std::string* out) = 0;
};

// One-shot encode of a complete body.
Result<std::string> EncodeAll(const std::vector<Coding>& codings, std::string_view body,
                              const EncoderOptions& options = {});

}  // namespace osb::secretsproxy
