#include "core/id.h"

#include <set>

#include <gtest/gtest.h>

namespace agora {
namespace {

TEST(NewId, HasPrefixAndIsValid) {
  std::string id = NewId("usr_");
  EXPECT_EQ(id.size(), 30u);
  EXPECT_TRUE(IsValidId(id, "usr_"));
  EXPECT_FALSE(IsValidId(id, "ord_"));
}

TEST(NewId, SortsByCreationTime) {
  ManualClock clock;
  std::string a = NewId("x_", clock);
  clock.Advance(std::chrono::milliseconds(1));
  std::string b = NewId("x_", clock);
  EXPECT_LT(a, b);
}

TEST(NewId, IsUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 10000; ++i) ids.insert(NewId("x_"));
  EXPECT_EQ(ids.size(), 10000u);
}

TEST(IsValidId, RefusesWrongAlphabetAndLength) {
  EXPECT_FALSE(IsValidId("usr_", "usr_"));
  EXPECT_FALSE(IsValidId("usr_01JD3M8Z6Q4V7R2K9T5W1X3Y4U", "usr_"));  // U is not Crockford
  EXPECT_FALSE(IsValidId("usr_01JD3M8Z6Q4V7R2K9T5W1X3Y4", "usr_"));
}

}  // namespace
}  // namespace agora
