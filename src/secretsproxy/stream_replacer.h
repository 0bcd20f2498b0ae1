// StreamReplacer: replaces every occurrence of a PatternSet's needles in a
// byte stream delivered in arbitrary pieces, with bounded memory.
//
// Semantics: leftmost-longest. Scanning left to right, among the matches that
// start at the leftmost position the longest wins; it is replaced and
// scanning resumes right after it (matches never overlap). So when one value
// contains another (a PIN "1234" inside a key "sk-1234-abcd") the longer one
// is replaced whole and nothing of it survives around a shorter one's token.
// The result does not depend on how the stream is cut into Feed calls. For
// sealed tokens (all 43 bytes, distinct, none a substring of another) this
// is plain "replace every token", exactly as before.
//
// How much is held back between Feed calls (HoldBack):
//  * kFixed (the default; every direction where the needles are secret
//    values, i.e. response scrubbing): after each Feed the output covers
//    exactly the input up to n - W, where n is the number of bytes fed so far
//    and W = window() = the set's longest needle rounded up to a multiple of
//    16, at least 64. The last min(W, n) bytes are always held back,
//    whatever they are, so how many bytes come out, and when, does not
//    depend on whether the input ends in a prefix of a value. Sound because
//    any match starting before the cut n - W ends at or before n (a needle
//    is at most W bytes): every match that could start there has been seen,
//    so the leftmost-longest decisions before the cut are final. The only
//    exception is a whole match that straddles the cut: its token is emitted
//    at once and the output runs up to the match's end (a whole value
//    becoming its token is the one thing allowed to show). The cost is
//    latency: the last W bytes of a streamed message wait for more bytes or
//    the end of the message (Finish); and W is the only thing the timing
//    reveals (an upper bound on the longest needle). There is deliberately
//    no timed flush: it would show a value echoed slowly by an honest
//    upstream.
//  * kMinimal (token substitution toward an upstream, where the needles are
//    public tokens): only bytes that may still belong to a match are held,
//    never more than max_length() bytes.
//
// `enabled` selects which patterns may be replaced (e.g. only the tokens whose
// allowedHosts match this upstream); a disabled needle passes unchanged.
// Not thread-safe (one per message direction); the PatternSet is shared.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "secretsproxy/pattern_set.h"

namespace osb::secretsproxy {

class StreamReplacer {
 public:
  enum class HoldBack { kFixed, kMinimal };

  // enabled.empty() = all enabled.
  explicit StreamReplacer(std::shared_ptr<const PatternSet> set, std::vector<bool> enabled = {},
                          HoldBack hold = HoldBack::kFixed);
  ~StreamReplacer();
  StreamReplacer(const StreamReplacer&) = delete;
  StreamReplacer& operator=(const StreamReplacer&) = delete;

  // Appends the processed output of `in` to *out.
  void Feed(std::string_view in, std::string* out);
  // End of stream: flushes held-back bytes; the replacer may be reused.
  void Finish(std::string* out);
  // One-shot helper for a complete string (header values, request target).
  std::string ReplaceAll(std::string_view in);
  // The same in place; returns whether anything was replaced. Allocates
  // nothing when no enabled needle occurs (the common case for headers).
  bool ReplaceInPlace(std::string* s);
  // True when an enabled needle occurs in `in`.
  bool ContainsEnabled(std::string_view in) const;

  // Which patterns were replaced so far (index into the PatternSet); empty
  // until the first replacement.
  const std::vector<bool>& matched() const { return matched_; }
  bool any_matched() const { return any_matched_; }
  // Input bytes fed but not yet represented in the output. kFixed: exactly
  // min(window(), bytes fed since the last Finish) unless a match straddles
  // the cut (then less).
  size_t held_back() const { return pending_.size(); }
  // kFixed's hold-back W (0 for an empty set).
  size_t window() const { return window_; }
  static size_t WindowFor(size_t max_length);

 private:
  struct Candidate {
    size_t start = 0;  // index into pending_ + input of the current call
    size_t end = 0;
    int32_t pattern = -1;
  };
  bool Enabled(int32_t p) const { return enabled_.empty() || enabled_[static_cast<size_t>(p)]; }
  int32_t EnabledOutput(uint32_t s) const;
  void Run(std::string_view in, bool at_end, std::string* out);

  std::shared_ptr<const PatternSet> set_;
  std::vector<bool> enabled_;
  HoldBack hold_;
  size_t window_ = 0;
  std::vector<bool> matched_;
  bool any_matched_ = false;
  // Automaton state after scanning pending_ (from the last restart point).
  uint32_t state_ = PatternSet::kRoot;
  // The best match seen that is not yet final (leftmost, then longest).
  Candidate cand_;
  std::string pending_;  // input not yet represented in the output
};

}  // namespace osb::secretsproxy
