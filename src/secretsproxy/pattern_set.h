// PatternSet: an immutable multi-pattern matcher (Aho–Corasick automaton)
// mapping each byte pattern (needle) to a replacement, built once and shared
// by every StreamReplacer of a session (request token substitution uses
// token -> value; response scrubbing uses value -> token).
//
// Fast path: while no partial match is in progress the scanner jumps to the
// next candidate start with SIMD (SSE2 first/last-byte filter) when all
// patterns share a prefix of >= 2 bytes (every sealed token starts with
// "osb_sealed_"), with memchr when they share a first byte, and with a
// 256-entry table otherwise.
//
// Memory: O(total pattern bytes). Needles and replacements may be secret
// values: the destructor wipes every copy. Thread-safe to read concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace osb::secretsproxy {

class PatternSet {
 public:
  struct Pattern {
    std::string needle;       // 1 byte .. 64 KiB; empty needles are ignored
    std::string replacement;
  };

  explicit PatternSet(std::vector<Pattern> patterns);
  ~PatternSet();
  PatternSet(const PatternSet&) = delete;
  PatternSet& operator=(const PatternSet&) = delete;

  size_t size() const { return patterns_.size(); }
  bool empty() const { return patterns_.empty(); }
  size_t max_length() const { return max_length_; }
  const Pattern& pattern(size_t i) const { return patterns_[i]; }

  // --- automaton interface used by StreamReplacer ---------------------
  static constexpr uint32_t kRoot = 0;
  // Next state after consuming byte c in state s.
  uint32_t Step(uint32_t s, uint8_t c) const;
  // Pattern index that ends exactly at state s (the longest), or -1.
  int32_t Output(uint32_t s) const { return nodes_[s].output; }
  // Next state on the failure chain that has an output, or kRoot.
  uint32_t DictLink(uint32_t s) const { return nodes_[s].dict; }
  uint32_t Depth(uint32_t s) const { return nodes_[s].depth; }
  // First index >= from at which a pattern could start, or n.
  size_t SkipToCandidate(const char* data, size_t n, size_t from) const;

 private:
  struct Node {
    uint32_t edge_begin = 0;
    uint32_t edge_count = 0;
    uint32_t fail = 0;
    uint32_t dict = 0;
    uint32_t depth = 0;
    int32_t output = -1;
  };
  struct Edge {
    uint8_t byte;
    uint32_t next;
  };
  uint32_t Child(uint32_t s, uint8_t c) const;  // goto, or UINT32_MAX

  std::vector<Pattern> patterns_;
  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  uint32_t root_next_[256] = {};
  bool first_byte_[256] = {};
  size_t first_byte_count_ = 0;
  uint8_t single_first_byte_ = 0;
  std::string common_prefix_;
  size_t max_length_ = 0;
};

}  // namespace osb::secretsproxy
