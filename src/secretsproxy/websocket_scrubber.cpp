#include "secretsproxy/websocket_scrubber.h"

namespace osb::secretsproxy {

WebSocketScrubber::WebSocketScrubber(std::shared_ptr<const PatternSet> values)
    : values_(std::move(values)), data_(values_) {}

void WebSocketScrubber::EmitFrame(bool fin, uint8_t opcode, std::string_view payload, std::string* out) const {
  out->push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint64_t n = payload.size();
  if (n < 126) {
    out->push_back(static_cast<char>(n));
  } else if (n <= 0xffff) {
    out->push_back(static_cast<char>(126));
    out->push_back(static_cast<char>(n >> 8));
    out->push_back(static_cast<char>(n & 0xff));
  } else {
    out->push_back(static_cast<char>(127));
    for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  out->append(payload);
}

bool WebSocketScrubber::Feed(std::string_view in, std::string* out) {
  size_t i = 0;
  while (i < in.size()) {
    if (!in_frame_) {
      // Collect the header: 2 bytes, then the extended length.
      while (header_.size() < 2 && i < in.size()) header_.push_back(in[i++]);
      if (header_.size() < 2) return true;
      const auto b0 = static_cast<uint8_t>(header_[0]);
      const auto b1 = static_cast<uint8_t>(header_[1]);
      if ((b0 & 0x70) != 0 || (b1 & 0x80) != 0) return false;  // RSV (compression) or masked server frame
      const uint8_t len7 = b1 & 0x7f;
      const size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
      while (header_.size() < need && i < in.size()) header_.push_back(in[i++]);
      if (header_.size() < need) return true;
      uint64_t len = len7;
      if (len7 >= 126) {
        len = 0;
        for (size_t k = 2; k < need; ++k) len = (len << 8) | static_cast<uint8_t>(header_[k]);
      }
      fin_ = (b0 & 0x80) != 0;
      opcode_ = b0 & 0x0f;
      const bool control = (opcode_ & 0x08) != 0;
      if (control && (len > 125 || !fin_)) return false;
      if (!control && opcode_ != 0 && input_in_message_) return false;  // new message inside a fragmented one
      if (!control && opcode_ == 0 && !input_in_message_) return false;  // continuation without a message
      if (!control && opcode_ != 0) message_opcode_ = opcode_;
      header_.clear();
      remaining_ = len;
      in_frame_ = true;
      control_.clear();
    }
    const bool control = (opcode_ & 0x08) != 0;
    const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - i));
    std::string_view piece = in.substr(i, take);
    i += take;
    remaining_ -= take;
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
    if (remaining_ > 0) return true;
    in_frame_ = false;
    if (control) {
      StreamReplacer r(values_);
      std::string payload = r.ReplaceAll(control_);
      control_scrubbed_ |= r.any_matched();
      if (payload.size() > 125) payload = opcode_ == 0x8 ? control_.substr(0, 2) : std::string();
      EmitFrame(true, opcode_, payload, out);
    } else if (fin_) {
      scratch_.clear();
      data_.Finish(&scratch_);
      EmitFrame(true, message_started_ ? 0 : message_opcode_, scratch_, out);
      message_started_ = false;
      input_in_message_ = false;
    } else {
      input_in_message_ = true;
    }
  }
  return true;
}

}  // namespace osb::secretsproxy
