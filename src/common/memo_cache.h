// MemoCache: remembers a value derived from a source, per key, and derives
// it again only when the source differs (by ==) from the one it was made
// from, e.g. a sandbox row's parsed view or its JSON rendering, so a listing
// does not re-parse and re-render unchanged rows on every request.
// Bounded: past `max_entries` keys everything is forgotten at once (the
// values are caches; a miss only costs the derivation). Never holds secret
// material: callers cache only what they would return to any caller of
// their org anyway. Thread-safe; `make` runs outside the lock.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace osb {

template <typename Source, typename Value>
class MemoCache {
 public:
  explicit MemoCache(size_t max_entries) : max_entries_(max_entries) {}

  template <typename Make>
  Value Get(const std::string& key, const Source& source, Make&& make) {
    {
      std::lock_guard lock(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second.first == source) return it->second.second;
    }
    Value value = make(source);
    std::lock_guard lock(mu_);
    if (entries_.size() >= max_entries_ && entries_.find(key) == entries_.end()) entries_.clear();
    entries_.insert_or_assign(key, std::make_pair(source, value));
    return value;
  }

  size_t size() {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

 private:
  const size_t max_entries_;
  std::mutex mu_;
  std::unordered_map<std::string, std::pair<Source, Value>> entries_;
};

}  // namespace osb
