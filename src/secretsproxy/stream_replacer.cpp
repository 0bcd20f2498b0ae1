#include "secretsproxy/stream_replacer.h"

#include "common/secure_memory.h"

namespace osb::secretsproxy {

StreamReplacer::StreamReplacer(std::shared_ptr<const PatternSet> set, std::vector<bool> enabled)
    : set_(std::move(set)), enabled_(std::move(enabled)) {
  if (!enabled_.empty()) enabled_.resize(set_->size(), false);
}

StreamReplacer::~StreamReplacer() { SecureWipe(pending_); }

int32_t StreamReplacer::EnabledOutput(uint32_t s) const {
  while (s != PatternSet::kRoot) {
    const int32_t p = set_->Output(s);
    if (p >= 0 && Enabled(p)) return p;
    s = set_->DictLink(s);
  }
  return -1;
}

void StreamReplacer::EmitPrefix(size_t k, std::string_view in, size_t from, std::string* out) const {
  const size_t from_pending = std::min(k, pending_.size());
  out->append(pending_.data(), from_pending);
  out->append(in.data() + from, k - from_pending);
}

size_t StreamReplacer::ScanToMatch(const char* d, size_t n, size_t i, uint32_t* state, int32_t* pattern) const {
  const PatternSet& set = *set_;
  uint32_t s = *state;
  while (i < n) {
    if (s == PatternSet::kRoot) {
      i = set.SkipToCandidate(d, n, i);
      if (i >= n) break;
    }
    s = set.Step(s, static_cast<uint8_t>(d[i]));
    ++i;
    if (set.Output(s) < 0 && set.DictLink(s) == PatternSet::kRoot) continue;
    const int32_t p = EnabledOutput(s);
    if (p >= 0) {
      *state = s;
      *pattern = p;
      return i;
    }
  }
  *state = s;
  *pattern = -1;
  return n;
}

void StreamReplacer::Feed(std::string_view in, std::string* out) {
  const char* d = in.data();
  const size_t n = in.size();
  const PatternSet& set = *set_;
  size_t emit_from = 0;  // first byte of `in` not yet emitted (pending_ precedes it)
  size_t i = 0;
  uint32_t s = state_;
  while (true) {
    int32_t p = -1;
    i = ScanToMatch(d, n, i, &s, &p);
    if (p < 0) break;
    const auto& pat = set.pattern(static_cast<size_t>(p));
    const size_t unemitted = pending_.size() + (i - emit_from);
    EmitPrefix(unemitted - pat.needle.size(), in, emit_from, out);
    out->append(pat.replacement);
    if (matched_.empty()) matched_.resize(set.size(), false);
    matched_[static_cast<size_t>(p)] = true;
    any_matched_ = true;
    SecureWipe(pending_);
    emit_from = i;
    s = PatternSet::kRoot;
  }
  // Hold back the bytes of the partial match in progress (its depth).
  const size_t depth = set.Depth(s);
  const size_t tail = n - emit_from;
  const size_t unemitted = pending_.size() + tail;
  EmitPrefix(unemitted - depth, in, emit_from, out);
  if (depth <= tail) {
    SecureWipe(pending_);
    pending_.assign(d + n - depth, depth);
  } else {
    std::string keep = pending_.substr(pending_.size() - (depth - tail));
    keep.append(d + emit_from, tail);
    SecureWipe(pending_);
    pending_ = std::move(keep);
  }
  state_ = s;
}

void StreamReplacer::Finish(std::string* out) {
  out->append(pending_);
  SecureWipe(pending_);
  state_ = PatternSet::kRoot;
}

bool StreamReplacer::ContainsEnabled(std::string_view in) const {
  uint32_t s = PatternSet::kRoot;
  int32_t p = -1;
  ScanToMatch(in.data(), in.size(), 0, &s, &p);
  return p >= 0;
}

bool StreamReplacer::ReplaceInPlace(std::string* s) {
  if (!ContainsEnabled(*s)) return false;
  std::string replaced = ReplaceAll(*s);
  SecureWipe(*s);  // may hold a real value (scrubbing direction)
  *s = std::move(replaced);
  return true;
}

std::string StreamReplacer::ReplaceAll(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 64);
  Feed(in, &out);
  Finish(&out);
  return out;
}

}  // namespace osb::secretsproxy
