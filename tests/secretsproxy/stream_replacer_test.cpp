// The streaming replacer must find every pattern however the stream is cut:
// every test re-feeds its input split at every byte offset, in 1-byte pieces,
// and compares with a simple reference implementation.
#include "secretsproxy/stream_replacer.h"

#include <gtest/gtest.h>

#include <random>

#include "secretsproxy/chunked.h"

namespace osb::secretsproxy {
namespace {

const std::string kTok1 = "osb_sealed_0123456789abcdef0123456789abcdef";
const std::string kTok2 = "osb_sealed_fedcba9876543210fedcba9876543210";
const std::string kTok3 = "osb_sealed_00000000000000000000000000000000";

std::shared_ptr<const PatternSet> Set(std::vector<std::pair<std::string, std::string>> pairs) {
  std::vector<PatternSet::Pattern> p;
  for (auto& [n, r] : pairs) p.push_back({n, r});
  return std::make_shared<PatternSet>(std::move(p));
}

// Reference: earliest-ending match, longest at that end, restart after it.
std::string Reference(const std::vector<std::pair<std::string, std::string>>& pats, const std::string& in) {
  std::string out;
  size_t emitted = 0;
  size_t i = 0;
  while (i < in.size()) {
    ++i;
    int best = -1;
    for (size_t k = 0; k < pats.size(); ++k) {
      const auto& n = pats[k].first;
      if (n.size() <= i - emitted && in.compare(i - n.size(), n.size(), n) == 0) {
        if (best < 0 || n.size() > pats[static_cast<size_t>(best)].first.size()) best = static_cast<int>(k);
      }
    }
    if (best >= 0) {
      const auto& p = pats[static_cast<size_t>(best)];
      out.append(in, emitted, i - p.first.size() - emitted);
      out += p.second;
      emitted = i;
    }
  }
  out.append(in, emitted, std::string::npos);
  return out;
}

void ExpectAllSplits(const std::vector<std::pair<std::string, std::string>>& pats, const std::string& in) {
  auto set = Set(pats);
  const std::string want = Reference(pats, in);
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    StreamReplacer r(set);
    std::string out;
    r.Feed(std::string_view(in).substr(0, cut), &out);
    EXPECT_LT(r.held_back(), set->max_length()) << "hold-back bound";
    r.Feed(std::string_view(in).substr(cut), &out);
    r.Finish(&out);
    ASSERT_EQ(out, want) << "split at " << cut;
  }
  StreamReplacer r(set);
  std::string out;
  for (char c : in) {
    r.Feed(std::string_view(&c, 1), &out);
    ASSERT_LT(r.held_back(), set->max_length());
  }
  r.Finish(&out);
  ASSERT_EQ(out, want) << "1-byte pieces";
}

TEST(StreamReplacer, SingleTokenAtEverySplit) {
  ExpectAllSplits({{kTok1, "sk-live-REAL"}}, "Authorization: Bearer " + kTok1 + "\r\n");
  ExpectAllSplits({{kTok1, "sk-live-REAL"}}, kTok1);
  ExpectAllSplits({{kTok1, "v"}}, "x" + kTok1 + kTok1 + "y");
}

TEST(StreamReplacer, MultipleTokensAndDecoys) {
  const std::string in = "a=" + kTok1 + "&b=" + kTok2 + "&c=osb_sealed_0123&d=" + kTok3.substr(0, 42) +
                         "&e=oosb_sealed_" + kTok2 + kTok1 + "osb_sealed_ffffffffffffffffffffffffffffffff";
  ExpectAllSplits({{kTok1, "ONE"}, {kTok2, "TWO-longer-value"}, {kTok3, "3"}}, in);
}

TEST(StreamReplacer, TokenLookalikeNotInSessionPassesUnchanged) {
  auto set = Set({{kTok1, "REAL"}});
  StreamReplacer r(set);
  const std::string other = "osb_sealed_11111111111111111111111111111111";
  EXPECT_EQ(r.ReplaceAll("x " + other + " y"), "x " + other + " y");
  EXPECT_FALSE(r.any_matched());
}

TEST(StreamReplacer, DisabledPatternStaysSealed) {
  auto set = Set({{kTok1, "ONE"}, {kTok2, "TWO"}});
  StreamReplacer r(set, {false, true});
  EXPECT_EQ(r.ReplaceAll(kTok1 + "|" + kTok2), kTok1 + "|TWO");
  EXPECT_FALSE(r.matched()[0]);
  EXPECT_TRUE(r.matched()[1]);
}

TEST(StreamReplacer, ArbitraryValuesForScrubbing) {
  // Values overlap, nest and share prefixes: the reference defines the result.
  std::vector<std::pair<std::string, std::string>> pats = {
      {"abc", kTok1}, {"abcdef", kTok2}, {"cde", kTok3}, {"aaaa", "T4"}, {"\r\n", "T5"}};
  ExpectAllSplits(pats, "xxabcdefyy abcde aaaaaa ababcabc \r\r\n\n abcdeabcdef");
}

TEST(StreamReplacer, NoValueSurvivesScrubbingRandomised) {
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::pair<std::string, std::string>> pats;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) {
      std::string v;
      const size_t len = 2 + rng() % 6;
      for (size_t j = 0; j < len; ++j) v += static_cast<char>('a' + rng() % 3);
      pats.push_back({v, "<" + std::to_string(k) + ">"});
    }
    std::string in;
    const size_t len = rng() % 80;
    for (size_t j = 0; j < len; ++j) in += static_cast<char>('a' + rng() % 3);
    ExpectAllSplits(pats, in);
  }
}

TEST(StreamReplacer, LargeValueHoldBackIsBounded) {
  std::string value(64 * 1024, 'v');
  value.back() = 'w';
  auto set = Set({{value, "TOKEN"}});
  StreamReplacer r(set);
  std::string out;
  std::string stream = std::string(100, 'a') + value + std::string(100, 'b');
  for (size_t i = 0; i < stream.size(); i += 1000) {
    r.Feed(std::string_view(stream).substr(i, 1000), &out);
    ASSERT_LT(r.held_back(), value.size());
  }
  r.Finish(&out);
  EXPECT_EQ(out, std::string(100, 'a') + "TOKEN" + std::string(100, 'b'));
}

// Tokens inside a chunked body: decode at every split of the wire bytes,
// substitute in the stream, re-encode, and decode again.
TEST(StreamReplacer, ChunkedFramingAtEverySplit) {
  const std::string body = "{\"key\":\"" + kTok1 + "\",\"again\":\"" + kTok1 + "\"}";
  std::string wire;
  // Chunk boundaries deliberately cut the token.
  AppendChunk(body.substr(0, 12), &wire);
  AppendChunk(body.substr(12, 20), &wire);
  AppendChunk(body.substr(32), &wire);
  wire += "0\r\n\r\n";
  auto set = Set({{kTok1, "REAL-VALUE"}});
  const std::string want = Reference({{kTok1, "REAL-VALUE"}}, body);
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    ChunkedDecoder dec;
    StreamReplacer r(set);
    std::string out_wire, decoded, replaced;
    for (std::string_view part : {std::string_view(wire).substr(0, cut), std::string_view(wire).substr(cut)}) {
      size_t consumed = 0;
      decoded.clear();
      auto st = dec.Decode(part, &consumed, &decoded);
      ASSERT_NE(st, ChunkedDecoder::Status::kBad) << cut;
      replaced.clear();
      r.Feed(decoded, &replaced);
      AppendChunk(replaced, &out_wire);
    }
    replaced.clear();
    r.Finish(&replaced);
    AppendChunk(replaced, &out_wire);
    out_wire += kLastChunk;
    ChunkedDecoder again;
    std::string final_body;
    size_t consumed = 0;
    ASSERT_EQ(again.Decode(out_wire, &consumed, &final_body), ChunkedDecoder::Status::kDone);
    ASSERT_EQ(final_body, want) << "split at " << cut;
  }
}

}  // namespace
}  // namespace osb::secretsproxy

namespace osb::secretsproxy {
namespace {

TEST(StreamReplacerInPlace, AgreesWithReplaceAllAndOnlyTouchesMatches) {
  const std::vector<std::pair<std::string, std::string>> pats = {{kTok1, "VALUE-ONE"}, {kTok2, "v2"}};
  const auto set = Set(pats);
  const std::vector<std::string> inputs = {"",
                                           "Bearer " + kTok1,
                                           "no token at all, only osb_sealed_ look-alikes osb_sealed_0123",
                                           kTok1 + kTok2 + "x" + kTok1,
                                           kTok3 + " not in the session"};
  for (const auto& in : inputs) {
    StreamReplacer a(set), b(set);
    std::string s = in;
    const bool changed = a.ReplaceInPlace(&s);
    EXPECT_EQ(s, b.ReplaceAll(in)) << in;
    EXPECT_EQ(changed, s != in) << in;
    EXPECT_EQ(a.any_matched(), changed) << in;
  }
}

TEST(StreamReplacerInPlace, DisabledNeedleIsLeftAlone) {
  const auto set = Set({{kTok1, "VALUE-ONE"}, {kTok2, "v2"}});
  StreamReplacer r(set, {false, true});
  std::string s = kTok1 + "," + kTok2;
  EXPECT_TRUE(r.ReplaceInPlace(&s));
  EXPECT_EQ(s, kTok1 + ",v2");
  ASSERT_EQ(r.matched().size(), 2u);
  EXPECT_FALSE(r.matched()[0]);
  EXPECT_TRUE(r.matched()[1]);
  std::string only_disabled = "x" + kTok1;
  EXPECT_FALSE(r.ReplaceInPlace(&only_disabled));
  EXPECT_EQ(only_disabled, "x" + kTok1);
}

}  // namespace
}  // namespace osb::secretsproxy
