// Fuzzes the scrubbing side of the proxy: StreamReplacer with overlapping and
// nested needles (both hold-back modes) and the WebSocket frame rewriters in
// both directions.
// Input layout: byte 0 = piece size, byte 1 = needle count / shape, then
// needles (length-prefixed, from a 3-letter alphabet so they nest and
// overlap), then the stream.
// Invariants checked (abort on violation):
//  * streamed output, in fuzzer-chosen pieces, equals a naive leftmost-longest
//    reference, for kFixed and kMinimal;
//  * kFixed holds back exactly min(window, fed) bytes until a match is
//    replaced (the amount never depends on the bytes), kMinimal less than the
//    longest needle;
//  * client frames built from the stream, fragmented at fuzzer-chosen points
//    and fed in pieces, come out masked, well formed, with each message equal
//    to the reference replacement of the input message;
//  * raw fuzzer bytes as server or client frames never crash either rewriter.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "secretsproxy/stream_replacer.h"
#include "secretsproxy/websocket_scrubber.h"

using namespace osb::secretsproxy;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::string Reference(const Pairs& pats, std::string_view in) {
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    int best = -1;
    for (size_t k = 0; k < pats.size(); ++k) {
      const auto& n = pats[k].first;
      if (!n.empty() && in.substr(i, n.size()) == n &&
          (best < 0 || n.size() > pats[static_cast<size_t>(best)].first.size())) {
        best = static_cast<int>(k);
      }
    }
    if (best >= 0) {
      out += pats[static_cast<size_t>(best)].second;
      i += pats[static_cast<size_t>(best)].first.size();
    } else {
      out += in[i++];
    }
  }
  return out;
}

void Check(bool ok) {
  if (!ok) std::abort();
}

std::string ClientFrame(bool fin, uint8_t opcode, std::string_view payload) {
  static const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  f.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i & 3]));
  return f;
}

// Reassembles masked frames into (opcode, payload) messages; aborts on
// malformed output.
std::vector<std::pair<uint8_t, std::string>> Messages(const std::string& wire) {
  std::vector<std::pair<uint8_t, std::string>> out;
  std::string cur;
  uint8_t op = 0;
  bool in_msg = false;
  size_t i = 0;
  while (i < wire.size()) {
    Check(i + 2 <= wire.size());
    const auto b0 = static_cast<uint8_t>(wire[i]);
    const auto b1 = static_cast<uint8_t>(wire[i + 1]);
    Check((b1 & 0x80) != 0);
    uint64_t n = b1 & 0x7f;
    size_t off = 2;
    if (n == 126) {
      Check(i + 4 <= wire.size());
      n = (static_cast<uint64_t>(static_cast<uint8_t>(wire[i + 2])) << 8) | static_cast<uint8_t>(wire[i + 3]);
      off = 4;
    } else if (n == 127) {
      Check(i + 10 <= wire.size());
      n = 0;
      for (size_t k = 2; k < 10; ++k) n = (n << 8) | static_cast<uint8_t>(wire[i + k]);
      off = 10;
    }
    Check(i + off + 4 + n <= wire.size());
    const std::string mask = wire.substr(i + off, 4);
    std::string payload = wire.substr(i + off + 4, n);
    for (size_t k = 0; k < payload.size(); ++k) payload[k] = static_cast<char>(payload[k] ^ mask[k & 3]);
    i += off + 4 + n;
    const uint8_t opcode = b0 & 0x0f;
    if (opcode & 0x08) {
      out.push_back({opcode, payload});
      continue;
    }
    Check(in_msg == (opcode == 0));
    if (!in_msg) op = opcode;
    in_msg = true;
    cur += payload;
    if (b0 & 0x80) {
      out.push_back({op, cur});
      cur.clear();
      in_msg = false;
    }
  }
  Check(!in_msg);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t step = 1 + data[0] % 48;
  const size_t count = 1 + data[1] % 4;
  size_t at = 2;
  Pairs pats;
  for (size_t k = 0; k < count && at < size; ++k) {
    const size_t len = 1 + data[at++] % 12;
    std::string needle;
    for (size_t j = 0; j < len && at < size; ++j) needle += static_cast<char>('a' + data[at++] % 3);
    pats.push_back({needle, "<" + std::to_string(k) + ">"});
  }
  std::string stream;
  for (; at < size; ++at) stream += data[at] % 2 ? static_cast<char>('a' + data[at] / 2 % 3) : static_cast<char>(data[at]);
  std::vector<PatternSet::Pattern> p;
  for (const auto& [n, r] : pats) p.push_back({n, r});
  auto set = std::make_shared<PatternSet>(std::move(p));
  const std::string want = Reference(pats, stream);

  // 1. Streaming replacement in pieces, both hold-back modes.
  for (auto hold : {StreamReplacer::HoldBack::kFixed, StreamReplacer::HoldBack::kMinimal}) {
    StreamReplacer r(set, {}, hold);
    std::string got;
    size_t fed = 0;
    for (size_t i = 0; i < stream.size(); i += step) {
      const std::string_view piece = std::string_view(stream).substr(i, step);
      r.Feed(piece, &got);
      fed += piece.size();
      if (hold == StreamReplacer::HoldBack::kFixed) {
        Check(r.held_back() <= r.window());
        if (!r.any_matched()) Check(r.held_back() == std::min(r.window(), fed));
      } else {
        Check(r.held_back() < set->max_length());
      }
    }
    r.Finish(&got);
    Check(got == want);
  }

  // 2. The stream as client messages: fragments of `step` bytes, every
  // (step)th message binary, fed to the substituter in pieces of
  // data[0]-derived size.
  {
    std::string wire;
    std::vector<std::string> messages;
    size_t i = 0;
    while (i < stream.size()) {
      const size_t msg_len = std::min(stream.size() - i, 1 + (step * 7) % 300);
      const std::string msg = stream.substr(i, msg_len);
      messages.push_back(msg);
      for (size_t f = 0; f < msg.size() || f == 0; f += step) {
        const bool last = f + step >= msg.size();
        wire += ClientFrame(last, f == 0 ? (messages.size() % 2 ? 1 : 2) : 0,
                            std::string_view(msg).substr(f, step));
        if (last) break;
      }
      i += msg_len;
    }
    WebSocketSubstituter sub(set, {});
    std::string out;
    const size_t piece = 1 + (step * 13) % 97;
    for (size_t k = 0; k < wire.size(); k += piece) Check(sub.Feed(std::string_view(wire).substr(k, piece), &out));
    const auto got = Messages(out);
    Check(got.size() == messages.size());
    for (size_t k = 0; k < got.size(); ++k) {
      Check(got[k].first == (k % 2 == 0 ? 1 : 2));
      Check(got[k].second == Reference(pats, messages[k]));
    }
  }

  // 3. Raw bytes as frames in both directions: no crash, no UB.
  {
    const std::string_view raw(reinterpret_cast<const char*>(data), size);
    WebSocketScrubber scrub(set);
    WebSocketSubstituter sub(set, {true});
    std::string out;
    bool scrub_ok = true, sub_ok = true;
    for (size_t i = 0; i < raw.size(); i += step) {
      if (scrub_ok) scrub_ok = scrub.Feed(raw.substr(i, step), &out);
      if (sub_ok) sub_ok = sub.Feed(raw.substr(i, step), &out);
    }
  }
  return 0;
}
