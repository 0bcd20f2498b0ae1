// Streaming message bodies between two ByteStreams (the relay<isRequest>
// shape): BodyReader yields decoded body bytes from any framing, BodyWriter
// pushes them through an optional StreamReplacer and frames them for the
// destination. PlanBody picks the output framing (see exchange.h). Memory is
// bounded by one read (16 KiB) plus the replacer's hold-back, except in the
// buffered plan, which the caller bounds by body_buffer_limit.
// Not thread-safe; one per message.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which needs std::exchange
#include <boost/asio/awaitable.hpp>
#include <string>

#include "secretsproxy/byte_stream.h"
#include "secretsproxy/chunked.h"
#include "secretsproxy/http_message.h"
#include "secretsproxy/stream_replacer.h"

namespace osb::secretsproxy {

inline constexpr size_t kReadChunk = 16 * 1024;

class BodyReader {
 public:
  enum class Status { kData, kDone, kError };
  BodyReader(ByteStream& src, std::string& buf, BodyFraming framing, Millis idle);
  // Appends the next decoded bytes to *out. kDone = body complete (out may
  // still have received the final bytes). kError sets *reason.
  boost::asio::awaitable<Status> Next(std::string* out, std::string* reason);
  // True when Next() will return without reading from the source (bytes
  // already buffered make progress, or the body is complete).
  bool Ready() const;
  uint64_t wire_bytes() const { return wire_bytes_; }

 private:
  boost::asio::awaitable<bool> Fill(std::string* reason);  // appends a read to buf_
  ByteStream& src_;
  std::string& buf_;
  BodyFraming framing_;
  Millis idle_;
  uint64_t remaining_ = 0;
  ChunkedDecoder decoder_;
  bool done_ = false;
  uint64_t wire_bytes_ = 0;
};

enum class OutFraming { kNone, kLength, kChunked, kClose };

struct BodyPlan {
  bool buffer_whole = false;  // read all, replace, exact Content-Length
  OutFraming out = OutFraming::kNone;
};

BodyPlan PlanBody(const BodyFraming& in, bool replacing, bool dst_accepts_chunked, size_t buffer_limit);
// Rewrites Content-Length / Transfer-Encoding for the plan (body_length is
// the exact output length for kLength).
void ApplyPlanToFields(const BodyPlan& plan, uint64_t body_length, std::vector<HeaderField>* fields);

class ContentEncoder;

// Writes a body: each piece goes through the replacer (if any), then the
// encoder (if any: a content-coded request body is re-encoded after
// substitution), then the framing.
class BodyWriter {
 public:
  BodyWriter(ByteStream& dst, OutFraming out, StreamReplacer* replacer, Millis idle,
             ContentEncoder* encoder = nullptr);
  boost::asio::awaitable<bool> Write(std::string_view piece);
  boost::asio::awaitable<bool> Finish();
  uint64_t wire_bytes() const { return wire_bytes_; }

  // Write coalescing: while corked, framed output is gathered instead of
  // written (starting with `prefix`, e.g. the message head), and Uncork()
  // writes it all with one WriteAll (one TLS record, one system call for a
  // small message). The caller corks only while it feeds bytes it already
  // holds (never across a wait for more input, which would delay the head);
  // past kReadChunk gathered bytes the writer uncorks itself (bounded memory
  // whatever a decoder yields). Prefix bytes count in wire_bytes().
  void Cork(std::string prefix);
  boost::asio::awaitable<bool> Uncork();
  bool corked() const { return corked_; }

 private:
  boost::asio::awaitable<bool> Send(std::string_view payload);
  // Writes `bytes` now, or gathers them while corked.
  boost::asio::awaitable<bool> Emit(std::string_view bytes);
  ByteStream& dst_;
  OutFraming out_;
  StreamReplacer* replacer_;
  Millis idle_;
  ContentEncoder* encoder_;
  std::string scratch_;
  std::string encoded_;
  std::string wire_;
  uint64_t wire_bytes_ = 0;
  bool corked_ = false;
  std::string gathered_;
};

}  // namespace osb::secretsproxy
