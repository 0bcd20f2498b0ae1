// ContentDecoder: streaming decoder for a stack of content-codings (gzip,
// deflate, br, zstd), with bounded memory and bounded output per call.
//
// Used on responses (decode what the upstream sent, so the scrubber sees the
// bytes the sandbox would finally read) and on content-encoded request
// bodies (decode before token substitution).
//
// Pull model, so a decompression bomb can never make the proxy hold more
// than it chooses:
//
//   auto dec = ContentDecoder::Create(codings);         // codings as applied
//   for each chunk of the encoded body:
//     dec->Feed(chunk);                                   // copied; keep none
//     while (true) {
//       piece.clear();
//       auto st = dec->Read(64 * 1024, &piece);           // <= 64 KiB appended
//       ... scrub and send `piece` ...
//       if (st == DecodeStatus::kNeedInput) break;        // chunk consumed
//       if (st == DecodeStatus::kError) -> dec->error()
//     }
//   at the end of the body: Status s = dec->Finish();     // truncated? error
//
// Contract:
//   - Read appends at most `max` bytes (max >= 1; at most 1 MiB per call
//     whatever `max` says, as that much room is reserved in *out). kMore: it appended at
//     least one byte and more output may follow without input; call Read
//     again. kNeedInput: everything fed so far is decoded and delivered
//     (bytes may have been appended by this call too); Feed more or Finish.
//     kError: the stream is corrupt; error() says why; sticky.
//   - Feed may be called at any time, but memory stays bounded only if the
//     caller feeds after kNeedInput: the decoder then holds at most the last
//     fed chunk, 16 KiB per inner layer, and each layer's library state
//     (gzip/deflate ~45 KiB; zstd <= 2^max_window_log + ~200 KiB; br <=
//     1.5 x 2^max_window_log + 2 MiB, enforced by its allocator: its ring
//     buffer grows with the output, old and new copies coexisting briefly).
//   - Finish, called when the body ended and Read returned kNeedInput: ok if
//     every layer ended cleanly, else an error (truncated stream). An empty
//     body (no byte fed at all, in any layer) is accepted as empty.
//   - Errors are values; nothing throws (except std::bad_alloc from the
//     standard library); no input crashes it (fuzzed: fuzz/
//     secretsproxy_content_decoder_fuzz.cpp). Error messages name the
//     coding and the reason, never content bytes.
// Formats:
//   - gzip (RFC 1952): concatenated members are one stream (as gzip -d and
//     browsers do); bytes after a member that do not start a member are an
//     error ("trailing data").
//   - deflate: zlib (RFC 1950) when the first two bytes are a valid zlib
//     header, else raw deflate (RFC 1951) — both are sent as "deflate" in
//     practice and browsers accept both. A preset dictionary is an error;
//     bytes after the end of the stream are an error.
//   - br (RFC 7932): bytes after the end of the stream are an error; a
//     stream whose window needs more memory than allowed is an error.
//   - zstd (RFC 8878): consecutive frames (and skippable frames) are one
//     stream; frames needing a dictionary, or a window above
//     2^max_window_log (8 MiB by default, the limit RFC 9659 sets for HTTP),
//     are errors.
// Metadata carried beside the data — gzip FNAME/FCOMMENT/FEXTRA, zstd
// skippable frames, br metadata blocks — is dropped, never output (a value
// could hide there as well as in the data).
// Not thread-safe; one per body.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "secretsproxy/content_coding.h"

namespace osb::secretsproxy {

struct DecoderOptions {
  // Largest history window a stream may require, as a power of two (zstd
  // frames, br ring buffer). gzip/deflate windows are 32 KiB regardless.
  int max_window_log = 23;
};

enum class DecodeStatus { kMore, kNeedInput, kError };

class ContentDecoder {
 public:
  // `codings` in the order they were applied (ParseContentEncoding's order;
  // the decoder undoes the last one first). An empty list is the identity
  // decoder (output = input, still in bounded pieces). Fails only when a
  // library cannot allocate its state or the list is too long.
  static Result<std::unique_ptr<ContentDecoder>> Create(const std::vector<Coding>& codings,
                                                        const DecoderOptions& options = {});
  virtual ~ContentDecoder() = default;

  virtual void Feed(std::string_view in) = 0;
  virtual DecodeStatus Read(size_t max, std::string* out) = 0;
  virtual Status Finish() = 0;
  virtual const Error& error() const = 0;

  // Total decoded bytes delivered so far.
  virtual uint64_t bytes_out() const = 0;
};

// One-shot decode of a complete body (e.g. a buffered request body): at most
// `max_output` decoded bytes, else a kTooLarge error; corrupt or truncated
// input is a kInvalidArgument error naming the coding.
Result<std::string> DecodeAll(const std::vector<Coding>& codings, std::string_view body, size_t max_output,
                              const DecoderOptions& options = {});

}  // namespace osb::secretsproxy
