// A least-recently-used cache of rendered answers, bounded in bytes and tied
// to one index revision.
//
// Every entry belongs to the revision it was computed at. A lookup or insert
// at a newer revision empties the cache first (the index changed, so every
// answer may be stale); entries from an older revision are never returned.
// Thread-safe (one mutex; a hit costs a hash lookup and a list splice).
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace agora::search {

class ResultCache {
 public:
  explicit ResultCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  // The value stored under `key` at `revision`, or nullopt.
  std::optional<std::string> Get(std::string_view key, uint64_t revision);
  // Stores `value` (if it fits in a quarter of the budget), evicting the
  // least recently used entries. Ignored when `revision` is older than the
  // cache's.
  void Put(std::string key, std::string value, uint64_t revision);

  size_t bytes() const;
  size_t entries() const;
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::string key;
    std::string value;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static size_t Cost(const Entry& e) { return e.key.size() * 2 + e.value.size() + 96; }
  void ClearLocked();  // REQUIRES(mu_)

  const size_t max_bytes_;
  mutable std::mutex mu_;
  uint64_t revision_ = 0;                  // GUARDED_BY(mu_)
  size_t bytes_ = 0;                       // GUARDED_BY(mu_)
  std::list<Entry> lru_;                   // GUARDED_BY(mu_), most recent first
  std::unordered_map<std::string_view, std::list<Entry>::iterator, Hash, std::equal_to<>> index_;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> hits_{0}, misses_{0};
};

}  // namespace agora::search
