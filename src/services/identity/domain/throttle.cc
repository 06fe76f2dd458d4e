#include "services/identity/domain/throttle.h"

#include <algorithm>

namespace agora::identity {
namespace {
constexpr size_t kPruneAbove = 100'000;
}

LoginThrottle::LoginThrottle(const Clock& clock, int free_failures, std::chrono::seconds max_delay,
                             std::chrono::seconds window)
    : clock_(clock), free_failures_(free_failures), max_delay_(max_delay), window_(window) {}

std::chrono::seconds LoginThrottle::RetryAfter(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(std::string(key));
  if (it == entries_.end()) return std::chrono::seconds(0);
  TimePoint now = clock_.Now();
  if (it->second.blocked_until <= now) return std::chrono::seconds(0);
  auto wait = std::chrono::ceil<std::chrono::seconds>(it->second.blocked_until - now);
  return std::max(wait, std::chrono::seconds(1));
}

void LoginThrottle::RecordFailure(std::string_view key) {
  std::lock_guard lock(mu_);
  TimePoint now = clock_.Now();
  if (entries_.size() > kPruneAbove) PruneLocked(now);
  Entry& e = entries_[std::string(key)];
  if (e.failures > 0 && now - e.last_failure > window_) e = Entry{};
  e.failures++;
  e.last_failure = now;
  int over = e.failures - free_failures_;
  if (over > 0) {
    auto delay = std::chrono::seconds(1) * (1LL << std::min(over - 1, 20));
    e.blocked_until = now + std::min<std::chrono::seconds>(delay, max_delay_);
  }
}

void LoginThrottle::RecordSuccess(std::string_view key) {
  std::lock_guard lock(mu_);
  entries_.erase(std::string(key));
}

void LoginThrottle::PruneLocked(TimePoint now) {
  std::erase_if(entries_, [&](const auto& kv) {
    return now - kv.second.last_failure > window_ && kv.second.blocked_until <= now;
  });
}

size_t LoginThrottle::SizeForTest() {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace agora::identity
