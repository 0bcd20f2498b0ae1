#include "secretsproxy/pattern_set.h"

#include <algorithm>
#include <cstring>
#include <deque>

#include "common/secure_memory.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace osb::secretsproxy {
namespace {

constexpr uint32_t kNone = UINT32_MAX;

// Position of the first occurrence of needle (length k >= 2) in data[from, n),
// or n. SSE2 filter on the first and last needle byte, memcmp to confirm.
size_t FindPrefix(const char* data, size_t n, size_t from, const std::string& needle) {
  const size_t k = needle.size();
  if (n < k || from > n - k) return n;
  size_t pos = from;
#if defined(__SSE2__)
  const __m128i first = _mm_set1_epi8(needle[0]);
  const __m128i last = _mm_set1_epi8(needle[k - 1]);
  while (pos + k - 1 + 16 <= n) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + pos));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + pos + k - 1));
    unsigned mask = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last))));
    while (mask != 0) {
      const unsigned bit = static_cast<unsigned>(__builtin_ctz(mask));
      if (std::memcmp(data + pos + bit + 1, needle.data() + 1, k - 2) == 0) return pos + bit;
      mask &= mask - 1;
    }
    pos += 16;
  }
#endif
  for (; pos + k <= n; ++pos) {
    if (data[pos] == needle[0] && std::memcmp(data + pos, needle.data(), k) == 0) return pos;
  }
  return n;
}

}  // namespace

PatternSet::PatternSet(std::vector<Pattern> patterns) {
  for (auto& p : patterns) {
    if (!p.needle.empty()) patterns_.push_back(std::move(p));
  }
  for (auto& p : patterns) SecureWipe(p.needle), SecureWipe(p.replacement);

  // 1. Trie (per-node child lists while building).
  std::vector<std::vector<std::pair<uint8_t, uint32_t>>> children(1);
  nodes_.resize(1);
  for (size_t pi = 0; pi < patterns_.size(); ++pi) {
    const std::string& needle = patterns_[pi].needle;
    max_length_ = std::max(max_length_, needle.size());
    uint32_t s = kRoot;
    for (char ch : needle) {
      const auto c = static_cast<uint8_t>(ch);
      uint32_t next = kNone;
      for (auto& [b, n] : children[s]) {
        if (b == c) next = n;
      }
      if (next == kNone) {
        next = static_cast<uint32_t>(nodes_.size());
        nodes_.push_back(Node{});
        nodes_.back().depth = nodes_[s].depth + 1;
        children.emplace_back();
        children[s].emplace_back(c, next);
      }
      s = next;
    }
    if (nodes_[s].output < 0) nodes_[s].output = static_cast<int32_t>(pi);  // first wins on duplicates
  }
  // 2. Flatten edges (sorted by byte).
  for (uint32_t s = 0; s < nodes_.size(); ++s) {
    auto& ch = children[s];
    std::sort(ch.begin(), ch.end());
    nodes_[s].edge_begin = static_cast<uint32_t>(edges_.size());
    nodes_[s].edge_count = static_cast<uint32_t>(ch.size());
    for (auto& [b, n] : ch) edges_.push_back(Edge{b, n});
  }
  // 3. Failure and dictionary links, breadth first.
  for (uint32_t c = 0; c < 256; ++c) {
    uint32_t n = Child(kRoot, static_cast<uint8_t>(c));
    root_next_[c] = n == kNone ? kRoot : n;
  }
  std::deque<uint32_t> queue;
  for (uint32_t i = 0; i < nodes_[kRoot].edge_count; ++i) {
    const uint32_t n = edges_[nodes_[kRoot].edge_begin + i].next;
    nodes_[n].fail = kRoot;
    queue.push_back(n);
  }
  while (!queue.empty()) {
    const uint32_t u = queue.front();
    queue.pop_front();
    for (uint32_t i = 0; i < nodes_[u].edge_count; ++i) {
      const Edge e = edges_[nodes_[u].edge_begin + i];
      nodes_[e.next].fail = Step(nodes_[u].fail, e.byte);
      const uint32_t f = nodes_[e.next].fail;
      nodes_[e.next].dict = nodes_[f].output >= 0 ? f : nodes_[f].dict;
      queue.push_back(e.next);
    }
  }
  // 4. Fast-skip data.
  for (const auto& p : patterns_) {
    const auto c = static_cast<uint8_t>(p.needle[0]);
    if (!first_byte_[c]) ++first_byte_count_;
    first_byte_[c] = true;
    single_first_byte_ = c;
  }
  if (!patterns_.empty()) {
    common_prefix_ = patterns_[0].needle;
    for (const auto& p : patterns_) {
      size_t k = 0;
      while (k < common_prefix_.size() && k < p.needle.size() && common_prefix_[k] == p.needle[k]) ++k;
      common_prefix_.resize(k);
    }
    common_prefix_.resize(std::min<size_t>(common_prefix_.size(), 16));
  }
}

PatternSet::~PatternSet() {
  for (auto& p : patterns_) SecureWipe(p.needle), SecureWipe(p.replacement);
  if (!edges_.empty()) SecureWipe(edges_.data(), edges_.size() * sizeof(Edge));
  SecureWipe(common_prefix_);
  SecureWipe(root_next_, sizeof(root_next_));
}

uint32_t PatternSet::Child(uint32_t s, uint8_t c) const {
  const Node& n = nodes_[s];
  const Edge* begin = edges_.data() + n.edge_begin;
  const Edge* end = begin + n.edge_count;
  if (n.edge_count <= 8) {
    for (const Edge* e = begin; e != end; ++e) {
      if (e->byte == c) return e->next;
    }
    return kNone;
  }
  const Edge* it = std::lower_bound(begin, end, c, [](const Edge& e, uint8_t v) { return e.byte < v; });
  return (it != end && it->byte == c) ? it->next : kNone;
}

uint32_t PatternSet::Step(uint32_t s, uint8_t c) const {
  while (s != kRoot) {
    const uint32_t n = Child(s, c);
    if (n != kNone) return n;
    s = nodes_[s].fail;
  }
  return root_next_[c];
}

size_t PatternSet::SkipToCandidate(const char* data, size_t n, size_t from) const {
  if (patterns_.empty()) return n;
  if (common_prefix_.size() >= 2) {
    const size_t k = common_prefix_.size();
    const size_t found = FindPrefix(data, n, from, common_prefix_);
    if (found != n) return found;
    // No complete prefix; a partial one may sit in the last k-1 bytes.
    size_t tail = n >= k - 1 ? n - (k - 1) : 0;
    for (size_t i = std::max(tail, from); i < n; ++i) {
      if (static_cast<uint8_t>(data[i]) == static_cast<uint8_t>(common_prefix_[0])) return i;
    }
    return n;
  }
  if (first_byte_count_ == 1) {
    if (from >= n) return n;
    const void* p = std::memchr(data + from, single_first_byte_, n - from);
    return p == nullptr ? n : static_cast<size_t>(static_cast<const char*>(p) - data);
  }
  size_t i = from;
  while (i < n && !first_byte_[static_cast<uint8_t>(data[i])]) ++i;
  return i;
}

}  // namespace osb::secretsproxy
