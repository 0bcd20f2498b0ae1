// StreamReplacer: replaces every occurrence of a PatternSet's needles in a
// byte stream delivered in arbitrary pieces, with bounded memory.
//
// Semantics: scanning left to right, the first position where some enabled
// needle ENDS wins; among needles ending there the longest wins; scanning
// restarts right after it (matches never overlap). For sealed tokens (all 43
// bytes, distinct, none a substring of another) this is plain "replace every
// token". Bytes that might still become a match are held back between Feed
// calls: never more than max_length()-1 bytes.
//
// `enabled` selects which patterns may be replaced (e.g. only the tokens whose
// allowedHosts match this upstream); a disabled needle passes unchanged.
// Not thread-safe (one per message direction); the PatternSet is shared.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "secretsproxy/pattern_set.h"

namespace osb::secretsproxy {

class StreamReplacer {
 public:
  // enabled.empty() = all enabled.
  explicit StreamReplacer(std::shared_ptr<const PatternSet> set, std::vector<bool> enabled = {});
  ~StreamReplacer();

  // Appends the processed output of `in` to *out.
  void Feed(std::string_view in, std::string* out);
  // End of stream: flushes held-back bytes; the replacer may be reused.
  void Finish(std::string* out);
  // One-shot helper for a complete string (header values, request target).
  std::string ReplaceAll(std::string_view in);
  // The same in place; returns whether anything was replaced. Allocates
  // nothing when no enabled needle occurs (the common case for headers).
  bool ReplaceInPlace(std::string* s);

  // Which patterns were replaced so far (index into the PatternSet); empty
  // until the first replacement.
  const std::vector<bool>& matched() const { return matched_; }
  bool any_matched() const { return any_matched_; }
  size_t held_back() const { return pending_.size(); }

 private:
  bool Enabled(int32_t p) const { return enabled_.empty() || enabled_[static_cast<size_t>(p)]; }
  int32_t EnabledOutput(uint32_t s) const;
  // Advances *state over d[i..n) until an enabled needle ends: returns the
  // index just past it with *pattern set, or n with *pattern = -1.
  size_t ScanToMatch(const char* d, size_t n, size_t i, uint32_t* state, int32_t* pattern) const;
  // True when an enabled needle occurs in `in` (scanned from the root state).
  bool ContainsEnabled(std::string_view in) const;
  // Appends the first k bytes of (pending_ + in[from..)) to *out.
  void EmitPrefix(size_t k, std::string_view in, size_t from, std::string* out) const;

  std::shared_ptr<const PatternSet> set_;
  std::vector<bool> enabled_;
  std::vector<bool> matched_;
  bool any_matched_ = false;
  uint32_t state_ = PatternSet::kRoot;
  std::string pending_;
};

}  // namespace osb::secretsproxy
