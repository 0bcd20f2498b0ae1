#include "secretsproxy/stream_replacer.h"

#include <algorithm>

#include "common/secure_memory.h"

namespace osb::secretsproxy {

size_t StreamReplacer::WindowFor(size_t max_length) {
  if (max_length == 0) return 0;
  return std::max<size_t>(64, (max_length + 15) / 16 * 16);
}

StreamReplacer::StreamReplacer(std::shared_ptr<const PatternSet> set, std::vector<bool> enabled, HoldBack hold)
    : set_(std::move(set)), enabled_(std::move(enabled)), hold_(hold), window_(WindowFor(set_->max_length())) {
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

// Works on the virtual buffer V = pending_ + in (indices into V). Invariants
// at entry: pending_ has been scanned, state_ is the automaton state after it
// (scanning restarted at the root at the end of the last replaced match), and
// cand_ is the best match seen since that restart that is not yet final.
//
// A candidate is final when nothing better can still appear: no match that
// starts at or before it can end after the bytes seen so far. That holds
// when every needle starting at cand.start fits in what was seen
// (cand.start + max_length <= pos), or when the longest live partial match
// (the automaton state's depth) starts after it.
void StreamReplacer::Run(std::string_view in, bool at_end, std::string* out) {
  const PatternSet& set = *set_;
  const size_t m = pending_.size();
  const size_t total = m + in.size();
  const size_t max_len = set.max_length();
  auto emit = [&](size_t a, size_t b) {  // V[a, b)
    if (a < m) {
      const size_t e = std::min(b, m);
      out->append(pending_.data() + a, e - a);
      a = e;
    }
    if (a < b) out->append(in.data() + (a - m), b - a);
  };
  size_t emitted = 0;  // V[0, emitted) is represented in *out
  auto commit = [&]() {
    const auto& pat = set.pattern(static_cast<size_t>(cand_.pattern));
    emit(emitted, cand_.start);
    out->append(pat.replacement);
    if (matched_.empty()) matched_.resize(set.size(), false);
    matched_[static_cast<size_t>(cand_.pattern)] = true;
    any_matched_ = true;
    emitted = cand_.end;
  };

  uint32_t s = state_;
  size_t j = m;  // next V index to scan
  while (true) {
    bool restarted = false;
    while (j < total && !restarted) {
      const bool in_pending = j < m;
      const char* d = in_pending ? pending_.data() : in.data();
      const size_t base = in_pending ? 0 : m;
      const size_t seg_n = (in_pending ? m : total) - base;
      size_t i = j - base;
      while (i < seg_n) {
        if (s == PatternSet::kRoot && cand_.pattern < 0) {
          i = set.SkipToCandidate(d, seg_n, i);  // fast path: no match in progress
          if (i >= seg_n) break;
        }
        s = set.Step(s, static_cast<uint8_t>(d[i]));
        ++i;
        const bool has_output = set.Output(s) >= 0 || set.DictLink(s) != PatternSet::kRoot;
        if (!has_output && cand_.pattern < 0) continue;
        const size_t pos = base + i;
        if (has_output) {
          // The longest enabled needle ending here starts leftmost of those
          // ending here; shorter ones can never beat it.
          const int32_t p = EnabledOutput(s);
          if (p >= 0) {
            const size_t len = set.pattern(static_cast<size_t>(p)).needle.size();
            const size_t start = pos - len;
            if (cand_.pattern < 0 || start < cand_.start ||
                (start == cand_.start && len > cand_.end - cand_.start)) {
              cand_ = Candidate{start, pos, p};
            }
          }
        }
        if (cand_.pattern >= 0 && (cand_.start + max_len <= pos || pos - set.Depth(s) > cand_.start)) {
          commit();
          j = cand_.end;  // rescan what follows the match from the root
          cand_ = Candidate{};
          s = PatternSet::kRoot;
          restarted = true;
          break;
        }
      }
      if (!restarted) j = base + seg_n;
    }
    if (restarted) continue;
    if (at_end && cand_.pattern >= 0) {  // nothing more can come: the candidate is final
      commit();
      j = cand_.end;
      cand_ = Candidate{};
      s = PatternSet::kRoot;
      continue;
    }
    break;
  }

  // How far the output may go.
  size_t limit = total;
  if (!at_end) {
    if (hold_ == HoldBack::kFixed) {
      limit = total > window_ ? total - window_ : 0;
    } else {
      limit = total - std::min<size_t>(set.Depth(s), total);
    }
    if (cand_.pattern >= 0) limit = std::min(limit, cand_.start);
  }
  limit = std::max(limit, emitted);
  emit(emitted, limit);

  // Keep V[limit, total).
  if (limit >= m) {
    SecureWipe(pending_);
    pending_.assign(in.data() + (limit - m), total - limit);
  } else {
    std::string keep;
    keep.reserve(total - limit);
    keep.append(pending_, limit, m - limit);
    keep.append(in);
    SecureWipe(pending_);
    pending_ = std::move(keep);
  }
  if (cand_.pattern >= 0) {
    cand_.start -= limit;
    cand_.end -= limit;
  }
  state_ = s;
  if (at_end) {
    SecureWipe(pending_);
    state_ = PatternSet::kRoot;
    cand_ = Candidate{};
  }
}

void StreamReplacer::Feed(std::string_view in, std::string* out) { Run(in, false, out); }

void StreamReplacer::Finish(std::string* out) { Run({}, true, out); }

bool StreamReplacer::ContainsEnabled(std::string_view in) const {
  const PatternSet& set = *set_;
  const char* d = in.data();
  const size_t n = in.size();
  uint32_t s = PatternSet::kRoot;
  size_t i = 0;
  while (i < n) {
    if (s == PatternSet::kRoot) {
      i = set.SkipToCandidate(d, n, i);
      if (i >= n) break;
    }
    s = set.Step(s, static_cast<uint8_t>(d[i]));
    ++i;
    if (set.Output(s) < 0 && set.DictLink(s) == PatternSet::kRoot) continue;
    if (EnabledOutput(s) >= 0) return true;
  }
  return false;
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
