// Login throttling: growing delays after repeated failures, per key.
//
// Keys are an account ("acct:<email>") or a client ("ip:<address>"). The
// first `free_failures` failures within `window` cost nothing; each further
// one doubles the wait before the next attempt (1 s, 2 s, 4 s ... up to
// `max_delay`). A success clears the key; a key forgets failures older than
// `window`. Unknown accounts are throttled exactly like known ones, so the
// answers do not reveal which emails exist. Thread-safe; in-process state
// (the distributed shape moves it to Redis).
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"

namespace agora::identity {

class LoginThrottle {
 public:
  LoginThrottle(const Clock& clock, int free_failures, std::chrono::seconds max_delay = std::chrono::minutes(15),
                std::chrono::seconds window = std::chrono::minutes(15));

  // Zero when an attempt for `key` may go ahead now, else the time to wait.
  std::chrono::seconds RetryAfter(std::string_view key);
  void RecordFailure(std::string_view key);
  void RecordSuccess(std::string_view key);

  size_t SizeForTest();

 private:
  struct Entry {
    int failures = 0;
    TimePoint last_failure;
    TimePoint blocked_until;
  };
  void PruneLocked(TimePoint now);

  const Clock& clock_;
  const int free_failures_;
  const std::chrono::seconds max_delay_;
  const std::chrono::seconds window_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
};

}  // namespace agora::identity
