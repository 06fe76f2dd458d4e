#include "services/identity/domain/throttle.h"

#include <gtest/gtest.h>

namespace agora::identity {
namespace {

using std::chrono::seconds;

TEST(LoginThrottle, FreeFailuresCostNothing) {
  ManualClock clock;
  LoginThrottle t(clock, 3);
  for (int i = 0; i < 3; ++i) t.RecordFailure("acct:a");
  EXPECT_EQ(t.RetryAfter("acct:a"), seconds(0));
}

TEST(LoginThrottle, DelaysGrowAfterTheFreeFailures) {
  ManualClock clock;
  LoginThrottle t(clock, 2);
  t.RecordFailure("k");
  t.RecordFailure("k");
  t.RecordFailure("k");
  EXPECT_EQ(t.RetryAfter("k"), seconds(1));
  clock.Advance(seconds(1));
  t.RecordFailure("k");
  EXPECT_EQ(t.RetryAfter("k"), seconds(2));
  clock.Advance(seconds(2));
  t.RecordFailure("k");
  EXPECT_EQ(t.RetryAfter("k"), seconds(4));
}

TEST(LoginThrottle, DelayIsCapped) {
  ManualClock clock;
  LoginThrottle t(clock, 0, seconds(60), seconds(3600));
  for (int i = 0; i < 40; ++i) t.RecordFailure("k");
  EXPECT_EQ(t.RetryAfter("k"), seconds(60));
}

TEST(LoginThrottle, SuccessClearsTheKey) {
  ManualClock clock;
  LoginThrottle t(clock, 0);
  t.RecordFailure("k");
  t.RecordSuccess("k");
  EXPECT_EQ(t.RetryAfter("k"), seconds(0));
}

TEST(LoginThrottle, KeysAreIndependent) {
  ManualClock clock;
  LoginThrottle t(clock, 0);
  t.RecordFailure("acct:a");
  EXPECT_GT(t.RetryAfter("acct:a"), seconds(0));
  EXPECT_EQ(t.RetryAfter("acct:b"), seconds(0));
}

TEST(LoginThrottle, OldFailuresAreForgotten) {
  ManualClock clock;
  LoginThrottle t(clock, 1, seconds(900), seconds(600));
  t.RecordFailure("k");
  clock.Advance(seconds(601));
  t.RecordFailure("k");
  EXPECT_EQ(t.RetryAfter("k"), seconds(0));
}

}  // namespace
}  // namespace agora::identity
