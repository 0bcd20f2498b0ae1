// Scrubs real values out of server-to-client WebSocket frames (RFC 6455)
// after an Upgrade, so an upstream cannot hand a value back to the sandbox
// inside websocket messages either.
//
// Streaming and bounded: a frame header (<= 14 bytes) is buffered, payloads
// pass through one StreamReplacer per message (values split across frames of
// a fragmented message are found). Because scrubbing changes lengths, every
// input data frame is re-emitted as one or more frames of the same message
// (first with the original opcode and FIN=0, then continuations; the final
// FIN=1 continuation carries the replacer's held-back tail). Control frames
// (<= 125 bytes) are scrubbed whole; one that would outgrow 125 bytes loses
// its payload (a close frame keeps its status code).
// Fails closed (Feed returns false) on frames it cannot scrub: masked server
// frames, RSV bits (compression — the proxy strips Sec-WebSocket-Extensions
// from the handshake so none is negotiated), oversized control frames.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "secretsproxy/stream_replacer.h"

namespace osb::secretsproxy {

class WebSocketScrubber {
 public:
  explicit WebSocketScrubber(std::shared_ptr<const PatternSet> values);
  // Appends scrubbed frames for `in` to *out; false = protocol violation,
  // the caller must close both sides.
  bool Feed(std::string_view in, std::string* out);
  bool scrubbed() const { return data_.any_matched() || control_scrubbed_; }

 private:
  void EmitFrame(bool fin, uint8_t opcode, std::string_view payload, std::string* out) const;
  std::shared_ptr<const PatternSet> values_;
  StreamReplacer data_;
  bool control_scrubbed_ = false;
  std::string header_;      // partial frame header
  uint64_t remaining_ = 0;  // payload bytes left in the current frame
  bool in_frame_ = false;
  bool fin_ = false;
  uint8_t opcode_ = 0;
  bool message_started_ = false;   // a frame of the current message was emitted
  bool input_in_message_ = false;  // inside a fragmented input message
  uint8_t message_opcode_ = 0;     // text/binary of the current message
  std::string control_;           // control frame payload being collected
  std::string scratch_;
};

}  // namespace osb::secretsproxy
