#include "secretsproxy/websocket_scrubber.h"

#include <gtest/gtest.h>

namespace osb::secretsproxy {
namespace {

const std::string kTok = "osb_sealed_0123456789abcdef0123456789abcdef";
const std::string kValue = "sk-REAL-value-123";

std::string Frame(bool fin, uint8_t opcode, const std::string& payload) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(payload.size()));
  } else {
    f.push_back(126);
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  return f + payload;
}

// Decodes frames; returns the concatenated payloads of data messages and
// checks that opcodes/fragmentation are well formed.
std::vector<std::pair<uint8_t, std::string>> Messages(const std::string& wire) {
  std::vector<std::pair<uint8_t, std::string>> out;
  size_t i = 0;
  std::string cur;
  uint8_t op = 0;
  bool in_msg = false;
  while (i < wire.size()) {
    const auto b0 = static_cast<uint8_t>(wire[i]);
    const auto b1 = static_cast<uint8_t>(wire[i + 1]);
    EXPECT_EQ(b1 & 0x80, 0);
    size_t n = b1 & 0x7f, off = 2;
    if (n == 126) n = (static_cast<uint8_t>(wire[i + 2]) << 8) | static_cast<uint8_t>(wire[i + 3]), off = 4;
    const std::string payload = wire.substr(i + off, n);
    i += off + n;
    const uint8_t opcode = b0 & 0x0f;
    if (opcode & 0x08) {
      out.push_back({opcode, payload});
      continue;
    }
    if (!in_msg) {
      EXPECT_NE(opcode, 0);
      op = opcode;
      in_msg = true;
    } else {
      EXPECT_EQ(opcode, 0);
    }
    cur += payload;
    if (b0 & 0x80) {
      out.push_back({op, cur});
      cur.clear();
      in_msg = false;
    }
  }
  EXPECT_FALSE(in_msg);
  return out;
}

std::shared_ptr<const PatternSet> Values() {
  return std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{{kValue, kTok}});
}

TEST(WebSocketScrubber, ValueSplitAcrossFragmentsAtEveryOffset) {
  const std::string text = "auth=" + kValue + " and " + kValue;
  std::string wire = Frame(false, 1, text.substr(0, 9)) + Frame(true, 9, "ping " + kValue) +
                     Frame(false, 0, text.substr(9, 5)) + Frame(true, 0, text.substr(14)) +
                     Frame(true, 2, std::string(300, 'b') + kValue) + Frame(true, 8, "\x03\xe8" + kValue);
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    WebSocketScrubber s(Values());
    std::string out;
    ASSERT_TRUE(s.Feed(wire.substr(0, cut), &out));
    ASSERT_TRUE(s.Feed(wire.substr(cut), &out));
    EXPECT_EQ(out.find(kValue), std::string::npos) << cut;
    auto msgs = Messages(out);
    ASSERT_EQ(msgs.size(), 4u) << cut;
    EXPECT_EQ(msgs[0], std::make_pair(uint8_t{9}, "ping " + kTok));
    EXPECT_EQ(msgs[1], std::make_pair(uint8_t{1}, "auth=" + kTok + " and " + kTok));
    EXPECT_EQ(msgs[2], std::make_pair(uint8_t{2}, std::string(300, 'b') + kTok));
    EXPECT_EQ(msgs[3], std::make_pair(uint8_t{8}, "\x03\xe8" + kTok));
  }
}

TEST(WebSocketScrubber, FailsClosedOnFramesItCannotScrub) {
  std::string out;
  WebSocketScrubber compressed(Values());
  EXPECT_FALSE(compressed.Feed(std::string("\xc1\x01x", 3), &out));  // RSV1 = permessage-deflate
  WebSocketScrubber masked(Values());
  EXPECT_FALSE(masked.Feed(std::string("\x81\x81\x00\x00\x00\x00x", 7), &out));
  WebSocketScrubber stray(Values());
  EXPECT_FALSE(stray.Feed(Frame(true, 0, "x"), &out));  // continuation without a message
  WebSocketScrubber big_ping(Values());
  EXPECT_FALSE(big_ping.Feed(Frame(true, 9, std::string(200, 'p')), &out));
}

}  // namespace
}  // namespace osb::secretsproxy
