#include "services/search/domain/result_cache.h"

namespace agora::search {

std::optional<std::string> ResultCache::Get(std::string_view key, uint64_t revision) {
  std::lock_guard lock(mu_);
  if (revision != revision_) {
    if (revision > revision_) {
      ClearLocked();
      revision_ = revision;
    }
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  auto it = index_.find(key);
  if (it == index_.end()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  hits_.fetch_add(1, std::memory_order_relaxed);
  return it->second->value;
}

void ResultCache::Put(std::string key, std::string value, uint64_t revision) {
  Entry entry{std::move(key), std::move(value)};
  const size_t cost = Cost(entry);
  if (cost > max_bytes_ / 4) return;
  std::lock_guard lock(mu_);
  if (revision < revision_) return;
  if (revision > revision_) {
    ClearLocked();
    revision_ = revision;
  }
  if (auto it = index_.find(entry.key); it != index_.end()) {
    bytes_ -= Cost(*it->second);
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.push_front(std::move(entry));
  index_.emplace(lru_.front().key, lru_.begin());
  bytes_ += cost;
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    auto& last = lru_.back();
    bytes_ -= Cost(last);
    index_.erase(last.key);
    lru_.pop_back();
  }
}

size_t ResultCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

size_t ResultCache::entries() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

void ResultCache::ClearLocked() {
  index_.clear();
  lru_.clear();
  bytes_ = 0;
}

}  // namespace agora::search
