#include "core/strings.h"

#include <gtest/gtest.h>

namespace agora {
namespace {

using V = std::vector<std::string_view>;

TEST(SplitList, KeepsEmptyPiecesSoCallersCanRefuseThem) {
  EXPECT_EQ(SplitList(""), V{});
  EXPECT_EQ(SplitList("a"), V{"a"});
  EXPECT_EQ(SplitList("new,good"), (V{"new", "good"}));
  EXPECT_EQ(SplitList("a,,b"), (V{"a", "", "b"}));
  EXPECT_EQ(SplitList("a,"), (V{"a", ""}));
  EXPECT_EQ(SplitList(","), (V{"", ""}));
  EXPECT_EQ(SplitList("x|y", '|'), (V{"x", "y"}));
}

}  // namespace
}  // namespace agora
