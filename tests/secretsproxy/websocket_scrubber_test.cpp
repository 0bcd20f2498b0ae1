#include "secretsproxy/websocket_scrubber.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace osb::secretsproxy {
namespace {

const std::string kTok = "osb_sealed_0123456789abcdef0123456789abcdef";
const std::string kValue = "sk-REAL-value-123";

std::string Frame(bool fin, uint8_t opcode, const std::string& payload, const char* mask = nullptr) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const char m = mask != nullptr ? static_cast<char>(0x80) : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(m | static_cast<char>(payload.size())));
  } else {
    f.push_back(static_cast<char>(m | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  if (mask == nullptr) return f + payload;
  f.append(mask, 4);
  for (size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return f;
}

// A client (masked) frame.
std::string CFrame(bool fin, uint8_t opcode, const std::string& payload) {
  static const char kMask[4] = {'\x5a', '\x01', '\x7f', '\x33'};
  return Frame(fin, opcode, payload, kMask);
}

// Decodes frames; returns the concatenated payloads of data messages and
// checks that opcodes/fragmentation are well formed.
std::vector<std::pair<uint8_t, std::string>> Messages(const std::string& wire, bool masked = false,
                                                      std::vector<std::string>* masks = nullptr) {
  std::vector<std::pair<uint8_t, std::string>> out;
  size_t i = 0;
  std::string cur;
  uint8_t op = 0;
  bool in_msg = false;
  while (i < wire.size()) {
    const auto b0 = static_cast<uint8_t>(wire[i]);
    const auto b1 = static_cast<uint8_t>(wire[i + 1]);
    EXPECT_EQ((b1 & 0x80) != 0, masked);
    size_t n = b1 & 0x7f, off = 2;
    if (n == 126) n = (static_cast<uint8_t>(wire[i + 2]) << 8) | static_cast<uint8_t>(wire[i + 3]), off = 4;
    std::string mask(4, '\0');
    if (masked) {
      mask = wire.substr(i + off, 4);
      if (masks != nullptr) masks->push_back(mask);
      off += 4;
    }
    std::string payload = wire.substr(i + off, n);
    for (size_t k = 0; k < payload.size(); ++k) payload[k] = static_cast<char>(payload[k] ^ mask[k % 4]);
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


TEST(WebSocketScrubber, LongestValueWinsInFrames) {
  // A PIN inside a longer key: the key is replaced whole, split anywhere.
  const std::string pin = "1234", key = "sk-1234-abcd";
  const std::string tok2 = "osb_sealed_fedcba9876543210fedcba9876543210";
  auto values = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{{pin, kTok}, {key, tok2}});
  const std::string text = "k=" + key + " p=" + pin;
  const std::string wire = Frame(false, 1, text.substr(0, 6)) + Frame(true, 0, text.substr(6));
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    WebSocketScrubber s(values);
    std::string out;
    ASSERT_TRUE(s.Feed(wire.substr(0, cut), &out));
    ASSERT_TRUE(s.Feed(wire.substr(cut), &out));
    auto msgs = Messages(out);
    ASSERT_EQ(msgs.size(), 1u) << cut;
    EXPECT_EQ(msgs[0].second, "k=" + tok2 + " p=" + kTok) << cut;
    EXPECT_EQ(out.find("-abcd"), std::string::npos) << cut;
  }
}

TEST(WebSocketScrubber, EmittedBytesDoNotDependOnValuePrefixes) {
  // Item 2 of issue 11 for frames: a fragment ending in a value's prefix
  // yields exactly as many bytes as one ending in other bytes.
  WebSocketScrubber a(Values()), b(Values());
  std::string out_a, out_b;
  const std::string lead(100, '.');
  for (size_t k = 1; k < kValue.size(); ++k) {
    ASSERT_TRUE(a.Feed(Frame(false, k == 1 ? 1 : 0, lead + kValue.substr(0, k)), &out_a));
    ASSERT_TRUE(b.Feed(Frame(false, k == 1 ? 1 : 0, lead + std::string(k, 'q')), &out_b));
    ASSERT_EQ(out_a.size(), out_b.size()) << k;
  }
}

// ---- client -> server frames (item 9) ----------------------------------

const std::string kTok2 = "osb_sealed_fedcba9876543210fedcba9876543210";

std::shared_ptr<const PatternSet> Tokens() {
  return std::make_shared<PatternSet>(
      std::vector<PatternSet::Pattern>{{kTok, kValue}, {kTok2, "other-host-value"}});
}

TEST(WebSocketSubstituter, TokensInMaskedFramesAtEverySplit) {
  const std::string text = "auth=" + kTok + " sealed=" + kTok2 + " again=" + kTok;
  const std::string bin = std::string(200, '\0') + kTok + std::string(3, '\xff');
  // Text message fragmented so that tokens straddle frames, a ping inside
  // it, a binary message, and a close frame.
  const std::string wire = CFrame(false, 1, text.substr(0, 20)) + CFrame(true, 9, "p " + kTok) +
                           CFrame(false, 0, text.substr(20, 1)) + CFrame(true, 0, text.substr(21)) +
                           CFrame(true, 2, bin) + CFrame(true, 8, "\x03\xe8" + kTok);
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    WebSocketSubstituter s(Tokens(), {true, false});  // kTok2 not enabled for this host
    std::string out;
    ASSERT_TRUE(s.Feed(wire.substr(0, cut), &out)) << cut;
    ASSERT_TRUE(s.Feed(wire.substr(cut), &out)) << cut;
    std::vector<std::string> masks;
    auto msgs = Messages(out, true, &masks);
    ASSERT_EQ(msgs.size(), 4u) << cut;
    EXPECT_EQ(msgs[0], std::make_pair(uint8_t{9}, "p " + kValue));
    EXPECT_EQ(msgs[1], std::make_pair(uint8_t{1}, "auth=" + kValue + " sealed=" + kTok2 + " again=" + kValue));
    EXPECT_EQ(msgs[2], std::make_pair(uint8_t{2}, std::string(200, '\0') + kValue + std::string(3, '\xff')));
    EXPECT_EQ(msgs[3], std::make_pair(uint8_t{8}, "\x03\xe8" + kValue));
    EXPECT_TRUE(s.substituted());
    for (const auto& m : masks) EXPECT_NE(m, std::string("\x5a\x01\x7f\x33", 4)) << "fresh mask";
  }
}

TEST(WebSocketSubstituter, MasksAreFreshPerFrame) {
  WebSocketSubstituter s(Tokens(), {});
  std::string out;
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(s.Feed(CFrame(true, 1, "same " + kTok), &out));
  std::vector<std::string> masks;
  auto msgs = Messages(out, true, &masks);
  ASSERT_EQ(msgs.size(), 8u);
  std::sort(masks.begin(), masks.end());
  EXPECT_EQ(std::unique(masks.begin(), masks.end()), masks.end());
}

TEST(WebSocketSubstituter, NothingEnabledPassesTokensSealed) {
  WebSocketSubstituter s(Tokens(), {false, false});
  std::string out;
  ASSERT_TRUE(s.Feed(CFrame(true, 1, "x " + kTok + " y"), &out));
  auto msgs = Messages(out, true);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].second, "x " + kTok + " y");
  EXPECT_FALSE(s.substituted());
}

TEST(WebSocketSubstituter, FailsClosedOnProtocolViolations) {
  std::string out;
  WebSocketSubstituter unmasked(Tokens(), {});
  EXPECT_FALSE(unmasked.Feed(Frame(true, 1, "x"), &out));  // client frames must be masked
  WebSocketSubstituter compressed(Tokens(), {});
  std::string rsv = CFrame(true, 1, "x");
  rsv[0] = static_cast<char>(rsv[0] | 0x40);
  EXPECT_FALSE(compressed.Feed(rsv, &out));
  WebSocketSubstituter stray(Tokens(), {});
  EXPECT_FALSE(stray.Feed(CFrame(true, 0, "x"), &out));
  WebSocketSubstituter nested(Tokens(), {});
  EXPECT_FALSE(nested.Feed(CFrame(false, 1, "x") + CFrame(true, 2, "y"), &out));
  WebSocketSubstituter fragmented_ping(Tokens(), {});
  EXPECT_FALSE(fragmented_ping.Feed(CFrame(false, 9, "x"), &out));
  WebSocketSubstituter reserved(Tokens(), {});
  EXPECT_FALSE(reserved.Feed(CFrame(true, 3, "x"), &out));
  WebSocketSubstituter huge(Tokens(), {});
  EXPECT_FALSE(huge.Feed(std::string("\x81\xff\x80\0\0\0\0\0\0\0mask", 14), &out));
}

TEST(WebSocketSubstituter, OversizedControlPayloadIsDropped) {
  // A close reason that grows past 125 bytes keeps only its status code.
  const std::string long_value(124, 'v');
  auto set = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{{kTok, long_value}});
  WebSocketSubstituter s(set, {});
  std::string out;
  ASSERT_TRUE(s.Feed(CFrame(true, 8, "\x03\xe8" + kTok) + CFrame(true, 9, kTok), &out));
  auto msgs = Messages(out, true);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0], std::make_pair(uint8_t{8}, std::string("\x03\xe8")));
  EXPECT_EQ(msgs[1], std::make_pair(uint8_t{9}, long_value));
}

}  // namespace
}  // namespace osb::secretsproxy
