#include "common/keyed_slots.h"

namespace osb {

void KeyedSlots::Slot::Release() {
  if (!table_) return;
  {
    std::lock_guard lock(table_->mu);
    auto it = table_->counts.find(key_);
    if (it != table_->counts.end() && --it->second == 0) table_->counts.erase(it);
  }
  table_.reset();
}

std::optional<KeyedSlots::Slot> KeyedSlots::TryAcquire(const std::string& key, size_t cap) {
  std::lock_guard lock(table_->mu);
  auto it = table_->counts.find(key);
  const size_t have = it == table_->counts.end() ? 0 : it->second;
  if (have >= cap) return std::nullopt;
  if (it == table_->counts.end()) {
    table_->counts.emplace(key, 1);
  } else {
    ++it->second;
  }
  return Slot(table_, key);
}

size_t KeyedSlots::Count(const std::string& key) const {
  std::lock_guard lock(table_->mu);
  auto it = table_->counts.find(key);
  return it == table_->counts.end() ? 0 : it->second;
}

size_t KeyedSlots::Total() const {
  std::lock_guard lock(table_->mu);
  size_t n = 0;
  for (const auto& [k, c] : table_->counts) n += c;
  return n;
}

}  // namespace osb
