// Streaming chunked transfer-coding (RFC 9112 section 7.1).
//
// ChunkedDecoder is strict: chunk size = 1*16 HEXDIG (no sign, no "0x", no
// whitespace), optional extensions (";..." up to 4 KiB, dropped), every line
// ends in CRLF (a bare LF is an error), chunk data is followed by exactly
// CRLF. Trailer fields are validated for size and line endings and dropped
// (never forwarded). Bounded memory: only the current size/trailer line is
// buffered. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace osb::secretsproxy {

class ChunkedDecoder {
 public:
  enum class Status { kNeedMore, kDone, kBad };

  // Consumes a prefix of `in` (count in *consumed) and appends decoded data
  // to *data. After kDone, bytes past *consumed belong to the next message.
  Status Decode(std::string_view in, size_t* consumed, std::string* data);
  const char* error() const { return error_; }

 private:
  enum class State { kSize, kData, kDataCr, kDataLf, kTrailer, kDone };
  Status Fail(const char* why) {
    error_ = why;
    return Status::kBad;
  }
  State state_ = State::kSize;
  uint64_t remaining_ = 0;
  std::string line_;
  size_t trailer_bytes_ = 0;
  const char* error_ = "";
};

// Encoding helpers.
void AppendChunk(std::string_view data, std::string* out);  // no-op for empty data
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace osb::secretsproxy
