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

// Reference: leftmost-longest. At each position the longest needle starting
// there wins (the first listed among equal ones); scanning resumes after it.
std::string Reference(const std::vector<std::pair<std::string, std::string>>& pats, const std::string& in) {
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    int best = -1;
    for (size_t k = 0; k < pats.size(); ++k) {
      const auto& n = pats[k].first;
      if (!n.empty() && in.compare(i, n.size(), n) == 0) {
        if (best < 0 || n.size() > pats[static_cast<size_t>(best)].first.size()) best = static_cast<int>(k);
      }
    }
    if (best >= 0) {
      const auto& p = pats[static_cast<size_t>(best)];
      out += p.second;
      i += p.first.size();
    } else {
      out += in[i++];
    }
  }
  return out;
}

// Checks one replacer's hold-back after `fed` bytes: kFixed holds exactly
// min(window, fed) bytes until a match was replaced (content-independent);
// kMinimal never holds a whole needle.
void ExpectHoldBack(const StreamReplacer& r, StreamReplacer::HoldBack hold, size_t fed, size_t max_length) {
  if (hold == StreamReplacer::HoldBack::kMinimal) {
    EXPECT_LT(r.held_back(), max_length) << "hold-back bound";
  } else {
    EXPECT_LE(r.held_back(), r.window());
    if (!r.any_matched()) {
      EXPECT_EQ(r.held_back(), std::min(r.window(), fed)) << "fixed hold-back after " << fed;
    }
  }
}

void ExpectAllSplits(const std::vector<std::pair<std::string, std::string>>& pats, const std::string& in) {
  auto set = Set(pats);
  const std::string want = Reference(pats, in);
  for (auto hold : {StreamReplacer::HoldBack::kFixed, StreamReplacer::HoldBack::kMinimal}) {
    for (size_t cut = 0; cut <= in.size(); ++cut) {
      StreamReplacer r(set, {}, hold);
      std::string out;
      r.Feed(std::string_view(in).substr(0, cut), &out);
      ExpectHoldBack(r, hold, cut, set->max_length());
      r.Feed(std::string_view(in).substr(cut), &out);
      r.Finish(&out);
      ASSERT_EQ(out, want) << "split at " << cut;
      EXPECT_EQ(r.held_back(), 0u);
    }
    StreamReplacer r(set, {}, hold);
    std::string out;
    size_t fed = 0;
    for (char c : in) {
      r.Feed(std::string_view(&c, 1), &out);
      ExpectHoldBack(r, hold, ++fed, set->max_length());
    }
    r.Finish(&out);
    ASSERT_EQ(out, want) << "1-byte pieces";
    // Reused after Finish: the same again.
    out.clear();
    r.Feed(in, &out);
    r.Finish(&out);
    ASSERT_EQ(out, want) << "reused";
  }
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

// Item 3 of issue 11: a short value inside a longer one must not win; the
// longer one is replaced whole, at every split.
TEST(StreamReplacer, LongestValueWinsWhenOneContainsAnother) {
  const std::vector<std::pair<std::string, std::string>> pats = {{"1234", kTok1}, {"sk-1234-abcd", kTok2}};
  const std::string in = "key=sk-1234-abcd pin=1234 partial=sk-1234-abc end";
  EXPECT_EQ(Reference(pats, in), "key=" + kTok2 + " pin=" + kTok1 + " partial=sk-" + kTok1 + "-abc end");
  ExpectAllSplits(pats, in);
  // The same with the longer value listed first, and nested three deep.
  ExpectAllSplits({{"sk-1234-abcd", kTok2}, {"1234", kTok1}}, in);
  ExpectAllSplits({{"23", "T1"}, {"1234", "T2"}, {"sk-1234-abcd", "T3"}, {"-abcd", "T4"}},
                  "sk-1234-abcd1234-abcdsk-1234-abc23sk-sk-1234-abcd");
}

TEST(StreamReplacer, LeftmostBeatsLongerLaterMatch) {
  // "abc" starts before "bcdefg": it wins, and the rest is rescanned.
  ExpectAllSplits({{"abc", "<1>"}, {"bcdefg", "<2>"}, {"defg", "<3>"}}, "xabcdefgx bcdefg");
  EXPECT_EQ(Reference({{"abc", "<1>"}, {"bcdefg", "<2>"}, {"defg", "<3>"}}, "xabcdefgx bcdefg"),
            "x<1><3>x <2>");
}

TEST(StreamReplacer, ScrubbedStreamCarriesNoValueByte) {
  // What reaches the sandbox never contains the longer value, nor any of its
  // bytes next to the shorter one's token.
  const std::string key = "sk-1234-abcd";
  auto set = Set({{"1234", kTok1}, {key, kTok2}});
  const std::string in = "a" + key + "b" + key + key;
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    StreamReplacer r(set);
    std::string out;
    r.Feed(std::string_view(in).substr(0, cut), &out);
    r.Feed(std::string_view(in).substr(cut), &out);
    r.Finish(&out);
    EXPECT_EQ(out, "a" + kTok2 + "b" + kTok2 + kTok2) << cut;
  }
}

// Item 2 of issue 11: how many bytes come out after each piece must not
// depend on whether the input is a prefix of a value.
TEST(StreamReplacer, FixedHoldBackDoesNotDependOnTheBytes) {
  const std::string value = "sk-live-REAL-0123456789-secret-with-some-length-to-it-" + std::string(40, 'z');
  auto set = Set({{value, kTok1}, {"PIN1", kTok2}});
  std::string filler(value.size(), 'q');
  for (size_t prefix_len : {size_t{1}, size_t{5}, value.size() - 1}) {
    for (size_t piece : {size_t{1}, size_t{3}, size_t{16}, size_t{200}}) {
      const std::string lead(150, '.');  // bytes before the probe
      const std::string probe = lead + value.substr(0, prefix_len);
      const std::string other = lead + filler.substr(0, prefix_len);
      StreamReplacer a(set), b(set);
      std::string out_a, out_b;
      for (size_t i = 0; i < probe.size(); i += piece) {
        a.Feed(std::string_view(probe).substr(i, piece), &out_a);
        b.Feed(std::string_view(other).substr(i, piece), &out_b);
        ASSERT_EQ(out_a.size(), out_b.size()) << "prefix " << prefix_len << " piece " << piece << " at " << i;
        ASSERT_EQ(a.held_back(), b.held_back());
        ASSERT_EQ(a.held_back(), std::min(a.window(), std::min(i + piece, probe.size())));
      }
      EXPECT_EQ(out_a, out_b);  // the bytes before the cut are the same '.'s
      EXPECT_EQ(a.window(), 96u);  // 94 rounded up to a multiple of 16
    }
  }
  // The window has a floor: short values reveal nothing of their length.
  EXPECT_EQ(StreamReplacer(Set({{"PIN1", "T"}})).window(), 64u);
  EXPECT_EQ(StreamReplacer::WindowFor(0), 0u);
  EXPECT_EQ(StreamReplacer::WindowFor(65), 80u);
}

TEST(StreamReplacer, NestedValuesRandomised) {
  std::mt19937 rng(7);
  for (int round = 0; round < 150; ++round) {
    // A base value and substrings of it, so matches nest and overlap.
    std::string base;
    const size_t blen = 4 + rng() % 8;
    for (size_t j = 0; j < blen; ++j) base += static_cast<char>('a' + rng() % 3);
    std::vector<std::pair<std::string, std::string>> pats = {{base, "<0>"}};
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int k = 1; k <= n; ++k) {
      const size_t from = rng() % (blen - 1);
      const size_t len = 1 + rng() % (blen - from);
      pats.push_back({base.substr(from, len), "<" + std::to_string(k) + ">"});
    }
    std::shuffle(pats.begin(), pats.end(), rng);
    std::string in;
    const size_t len = rng() % 60;
    for (size_t j = 0; j < len; ++j) {
      if (rng() % 5 == 0) in += base.substr(0, 1 + rng() % blen);
      in += static_cast<char>('a' + rng() % 4);
    }
    ExpectAllSplits(pats, in);
  }
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
    ASSERT_LE(r.held_back(), r.window());
    ASSERT_EQ(r.window(), value.size());  // 64 KiB is a multiple of 16
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
