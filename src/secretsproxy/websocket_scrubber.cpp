#include "secretsproxy/websocket_scrubber.h"

#include <openssl/rand.h>

#include <cstdlib>

#include "common/secure_memory.h"

namespace osb::secretsproxy {

WebSocketRewriter::WebSocketRewriter(Sender sender, std::shared_ptr<const PatternSet> set,
                                     std::vector<bool> enabled, StreamReplacer::HoldBack hold)
    : sender_(sender), set_(std::move(set)), enabled_(enabled), data_(set_, std::move(enabled), hold) {}

WebSocketRewriter::~WebSocketRewriter() {
  // Client frames carry substituted values, server frames unscrubbed ones.
  SecureWipe(control_);
  SecureWipe(piece_);
  SecureWipe(scratch_);
}

void WebSocketRewriter::NextMask(uint8_t mask[4]) {
  if (random_used_ + 4 > sizeof(random_)) {
    if (RAND_bytes(random_, sizeof(random_)) != 1) std::abort();  // never mask predictably
    random_used_ = 0;
  }
  for (int k = 0; k < 4; ++k) mask[k] = random_[random_used_++];
}

void WebSocketRewriter::EmitFrame(bool fin, uint8_t opcode, std::string_view payload, std::string* out) {
  const bool masked = sender_ == Sender::kClient;
  out->push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint64_t n = payload.size();
  const char mask_bit = masked ? static_cast<char>(0x80) : 0;
  if (n < 126) {
    out->push_back(static_cast<char>(mask_bit | static_cast<char>(n)));
  } else if (n <= 0xffff) {
    out->push_back(static_cast<char>(mask_bit | 126));
    out->push_back(static_cast<char>(n >> 8));
    out->push_back(static_cast<char>(n & 0xff));
  } else {
    out->push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  if (!masked) {
    out->append(payload);
    return;
  }
  uint8_t mask[4];
  NextMask(mask);
  out->append(reinterpret_cast<const char*>(mask), 4);
  const size_t at = out->size();
  out->append(payload);
  for (size_t i = 0; i < payload.size(); ++i) (*out)[at + i] = static_cast<char>((*out)[at + i] ^ mask[i & 3]);
}

bool WebSocketRewriter::Feed(std::string_view in, std::string* out) {
  const bool client = sender_ == Sender::kClient;
  size_t i = 0;
  while (i < in.size()) {
    if (!in_frame_) {
      // Collect the header: 2 bytes, the extended length, the mask.
      while (header_.size() < 2 && i < in.size()) header_.push_back(in[i++]);
      if (header_.size() < 2) return true;
      const auto b0 = static_cast<uint8_t>(header_[0]);
      const auto b1 = static_cast<uint8_t>(header_[1]);
      if ((b0 & 0x70) != 0) return false;                  // RSV bits (compression)
      if (((b1 & 0x80) != 0) != client) return false;      // server frames unmasked, client frames masked
      const uint8_t len7 = b1 & 0x7f;
      const size_t len_end = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
      const size_t need = len_end + (client ? 4 : 0);
      while (header_.size() < need && i < in.size()) header_.push_back(in[i++]);
      if (header_.size() < need) return true;
      uint64_t len = len7;
      if (len7 >= 126) {
        len = 0;
        for (size_t k = 2; k < len_end; ++k) len = (len << 8) | static_cast<uint8_t>(header_[k]);
        if (len >> 63) return false;
      }
      if (client) {
        for (size_t k = 0; k < 4; ++k) in_mask_[k] = static_cast<uint8_t>(header_[len_end + k]);
      }
      fin_ = (b0 & 0x80) != 0;
      opcode_ = b0 & 0x0f;
      const bool control = (opcode_ & 0x08) != 0;
      if (control && (len > 125 || !fin_ || opcode_ > 0xa)) return false;
      if (!control && opcode_ > 0x2) return false;                       // reserved data opcode
      if (!control && opcode_ != 0 && input_in_message_) return false;   // new message inside a fragmented one
      if (!control && opcode_ == 0 && !input_in_message_) return false;  // continuation without a message
      if (!control && opcode_ != 0) message_opcode_ = opcode_;
      header_.clear();
      remaining_ = len;
      in_offset_ = 0;
      in_frame_ = true;
      SecureWipe(control_);
    }
    const bool control = (opcode_ & 0x08) != 0;
    const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - i));
    std::string_view piece = in.substr(i, take);
    i += take;
    remaining_ -= take;
    if (client && !piece.empty()) {
      piece_.assign(piece);
      for (size_t k = 0; k < piece_.size(); ++k) {
        piece_[k] = static_cast<char>(piece_[k] ^ in_mask_[(in_offset_ + k) & 3]);
      }
      in_offset_ += piece_.size();
      piece = piece_;
    }
    if (control) {
      control_.append(piece);
    } else if (!piece.empty()) {
      scratch_.clear();
      data_.Feed(piece, &scratch_);
      if (!scratch_.empty()) {
        EmitFrame(false, message_started_ ? 0 : message_opcode_, scratch_, out);
        message_started_ = true;
      }
    }
    if (client) SecureWipe(piece_);
    if (remaining_ > 0) return true;
    in_frame_ = false;
    if (control) {
      StreamReplacer r(set_, enabled_);
      std::string payload = r.ReplaceAll(control_);
      control_matched_ |= r.any_matched();
      if (payload.size() > 125) {
        SecureWipe(payload);
        payload = opcode_ == 0x8 ? control_.substr(0, 2) : std::string();
      }
      EmitFrame(true, opcode_, payload, out);
      SecureWipe(payload);
      SecureWipe(control_);
    } else if (fin_) {
      scratch_.clear();
      data_.Finish(&scratch_);
      EmitFrame(true, message_started_ ? 0 : message_opcode_, scratch_, out);
      SecureWipe(scratch_);
      message_started_ = false;
      input_in_message_ = false;
    } else {
      input_in_message_ = true;
    }
  }
  return true;
}

}  // namespace osb::secretsproxy
