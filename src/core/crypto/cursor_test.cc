#include "core/crypto/cursor.h"

#include <gtest/gtest.h>

#include "core/crypto/temp_dir_for_test.h"

namespace agora::crypto {
namespace {

TEST(CursorCodec, RoundTripsItsOwnCursors) {
  CursorCodec codec(std::string(32, 'k'));
  boost::json::object state{{"sort", "price_asc"}, {"price", 1999}, {"id", "prd_x"}};
  auto decoded = codec.Decode(codec.Encode(state));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, state);
}

TEST(CursorCodec, RefusesTamperedTruncatedAndForeignCursors) {
  CursorCodec codec(std::string(32, 'k'));
  CursorCodec other(std::string(32, 'o'));
  std::string good = codec.Encode({{"id", "prd_x"}});
  std::string flipped = good;
  flipped[2] = flipped[2] == 'A' ? 'B' : 'A';
  for (const std::string& bad : {flipped, good.substr(0, good.size() - 1), good.substr(0, good.find('.')),
                                 std::string("."), std::string(""), other.Encode({{"id", "prd_x"}}),
                                 std::string(5000, 'a')}) {
    auto r = codec.Decode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().type, "invalid-cursor");
  }
}

TEST(CursorCodec, KeyPersistsInTheKeyFolder) {
  TempDirForTest dir;
  auto first = CursorCodec::LoadOrCreate(dir.path());
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = CursorCodec::LoadOrCreate(dir.path());
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->Decode(first->Encode({{"n", 1}})).ok());
}

}  // namespace
}  // namespace agora::crypto
