// Time source injected into domain code, so tests can move time by hand.
//
// SystemClock is the real wall clock; ManualClock starts where it is told and
// moves only when Advance() is called. Both are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace agora {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;

  // Seconds since the Unix epoch, as JWT `iat`/`exp` use.
  int64_t NowSeconds() const {
    return std::chrono::duration_cast<std::chrono::seconds>(Now().time_since_epoch()).count();
  }
  int64_t NowMillis() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Now().time_since_epoch()).count();
  }
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  static const SystemClock& Instance() {
    static const SystemClock clock;
    return clock;
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint(std::chrono::seconds(1'800'000'000)))
      : now_us_(std::chrono::duration_cast<std::chrono::microseconds>(start.time_since_epoch()).count()) {}
  TimePoint Now() const override { return TimePoint(std::chrono::microseconds(now_us_.load())); }
  void Advance(std::chrono::microseconds d) { now_us_ += d.count(); }

 private:
  std::atomic<int64_t> now_us_;
};

// Formats a time point as RFC 3339 in UTC with millisecond precision
// ("2026-11-28T14:26:18.123Z").
std::string FormatRfc3339(TimePoint t);

}  // namespace agora
