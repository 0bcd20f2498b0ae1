// Rewrites WebSocket frames (RFC 6455) after an Upgrade, in both directions:
//  * WebSocketScrubber: server -> client frames, real values -> tokens, so an
//    upstream cannot hand a value back to the sandbox inside messages. Every
//    value of the session is scrubbed, leftmost-longest, with the fixed
//    content-independent hold-back (see stream_replacer.h).
//  * WebSocketSubstituter: client -> server frames (masked), tokens -> values
//    for the secrets enabled for the upstream host only (the same host rules
//    as the request head and body). Each output frame gets a fresh random
//    mask (RFC 6455 5.3).
//
// Streaming and bounded: a frame header (<= 14 bytes) is buffered, payloads
// pass through one StreamReplacer per message (values or tokens split across
// frames of a fragmented message are found). Because replacement changes
// lengths, every input data frame is re-emitted as zero or more frames of the
// same message (the first with the original opcode and FIN=0, then
// continuations; a final FIN=1 frame carries the replacer's held-back tail).
// Control frames (<= 125 bytes) are rewritten whole; one that would outgrow
// 125 bytes loses its payload (a close frame keeps its status code).
// Fails closed (Feed returns false: the caller must close both sides) on
// anything it cannot rewrite: RSV bits (compression — the proxy strips
// Sec-WebSocket-Extensions from the handshake so none is negotiated), a
// masked server frame or an unmasked client frame, oversized or fragmented
// control frames, a continuation outside a message or a new message inside a
// fragmented one, unknown opcodes, a 64-bit length with the top bit set.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "secretsproxy/stream_replacer.h"

namespace osb::secretsproxy {

class WebSocketRewriter {
 public:
  enum class Sender { kServer, kClient };
  WebSocketRewriter(Sender sender, std::shared_ptr<const PatternSet> set, std::vector<bool> enabled,
                    StreamReplacer::HoldBack hold);
  ~WebSocketRewriter();
  // Appends rewritten frames for `in` to *out; false = protocol violation,
  // the caller must close both sides.
  bool Feed(std::string_view in, std::string* out);
  // Whether anything was replaced so far.
  bool rewrote() const { return data_.any_matched() || control_matched_; }

 private:
  void EmitFrame(bool fin, uint8_t opcode, std::string_view payload, std::string* out);
  void NextMask(uint8_t mask[4]);
  Sender sender_;
  std::shared_ptr<const PatternSet> set_;
  std::vector<bool> enabled_;
  StreamReplacer data_;
  bool control_matched_ = false;
  std::string header_;      // partial frame header
  uint64_t remaining_ = 0;  // payload bytes left in the current frame
  bool in_frame_ = false;
  bool fin_ = false;
  uint8_t opcode_ = 0;
  uint8_t in_mask_[4] = {};  // the client frame's mask
  uint64_t in_offset_ = 0;   // payload bytes of the current frame seen (mask phase)
  bool message_started_ = false;   // a frame of the current message was emitted
  bool input_in_message_ = false;  // inside a fragmented input message
  uint8_t message_opcode_ = 0;     // text/binary of the current message
  std::string control_;            // control frame payload being collected
  std::string piece_;              // unmasked payload piece
  std::string scratch_;
  uint8_t random_[64] = {};  // mask pool
  size_t random_used_ = sizeof(random_);
};

// Server -> client: every value of the session -> its token.
class WebSocketScrubber : public WebSocketRewriter {
 public:
  explicit WebSocketScrubber(std::shared_ptr<const PatternSet> values)
      : WebSocketRewriter(Sender::kServer, std::move(values), {}, StreamReplacer::HoldBack::kFixed) {}
  bool scrubbed() const { return rewrote(); }
};

// Client -> server: tokens enabled for the upstream host -> values.
class WebSocketSubstituter : public WebSocketRewriter {
 public:
  WebSocketSubstituter(std::shared_ptr<const PatternSet> tokens, std::vector<bool> enabled)
      : WebSocketRewriter(Sender::kClient, std::move(tokens), std::move(enabled),
                          StreamReplacer::HoldBack::kMinimal) {}
  bool substituted() const { return rewrote(); }
};

}  // namespace osb::secretsproxy
