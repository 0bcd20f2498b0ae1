// Counts live holders per key, each key with a cap: connections per sandbox,
// connections still in their handshake per sandbox, DNS TCP connections per
// source address. A Slot is held for as long as the thing it counts lives
// and gives its unit back when destroyed (or on Release()). Keys with no
// holder take no memory. Thread-safe; a Slot may outlive the KeyedSlots
// (it shares the table).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace osb {

class KeyedSlots {
  struct Table {
    std::mutex mu;
    std::map<std::string, size_t, std::less<>> counts;
  };

 public:
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& o) noexcept = default;
    Slot& operator=(Slot&& o) noexcept {
      if (this != &o) {
        Release();
        table_ = std::move(o.table_);
        key_ = std::move(o.key_);
      }
      return *this;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { Release(); }
    void Release();
    bool held() const { return table_ != nullptr; }

   private:
    friend class KeyedSlots;
    Slot(std::shared_ptr<Table> t, std::string key) : table_(std::move(t)), key_(std::move(key)) {}
    std::shared_ptr<Table> table_;
    std::string key_;
  };

  // A slot for `key` if fewer than `cap` are held; std::nullopt otherwise.
  std::optional<Slot> TryAcquire(const std::string& key, size_t cap);
  size_t Count(const std::string& key) const;
  size_t Total() const;

 private:
  std::shared_ptr<Table> table_ = std::make_shared<Table>();
};

}  // namespace osb
