#include "core/crypto/random.h"

#include <gtest/gtest.h>

#include <set>

#include "core/crypto/encoding.h"

namespace agora::crypto {
namespace {

TEST(RandomBytes, ReturnsRequestedLength) {
  EXPECT_EQ(RandomBytes(0).size(), 0u);
  EXPECT_EQ(RandomBytes(1).size(), 1u);
  EXPECT_EQ(RandomBytes(1000).size(), 1000u);
}

TEST(RandomBytes, DiffersBetweenCalls) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(seen.insert(RandomBytes(16)).second);
  }
}

TEST(RandomToken, IsUnpaddedBase64UrlOfRequestedBytes) {
  const std::string token = RandomToken();
  EXPECT_EQ(token.size(), 43u);
  std::optional<std::string> raw = Base64UrlDecode(token);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->size(), 32u);
  EXPECT_EQ(Base64UrlDecode(RandomToken(16))->size(), 16u);
  EXPECT_NE(RandomToken(), RandomToken());
}

}  // namespace
}  // namespace agora::crypto
