#include "core/clock.h"

#include <gtest/gtest.h>

namespace agora {
namespace {

TEST(FormatRfc3339, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(FormatRfc3339(TimePoint(std::chrono::milliseconds(0))), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(TimePoint(std::chrono::milliseconds(1795877243231))), "2026-11-28T14:47:23.231Z");
  // A leap day, and the last millisecond of a year.
  EXPECT_EQ(FormatRfc3339(TimePoint(std::chrono::milliseconds(951782400000))), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(TimePoint(std::chrono::milliseconds(1735689599999))), "2024-12-31T23:59:59.999Z");
}

TEST(ManualClock, MovesOnlyWhenAdvanced) {
  ManualClock clock;
  auto t0 = clock.Now();
  EXPECT_EQ(clock.Now(), t0);
  clock.Advance(std::chrono::seconds(90));
  EXPECT_EQ(clock.NowSeconds() - std::chrono::duration_cast<std::chrono::seconds>(t0.time_since_epoch()).count(), 90);
}

}  // namespace
}  // namespace agora
