#include "core/crypto/password.h"

#include <gtest/gtest.h>

namespace agora::crypto {
namespace {

const PasswordHashParams kTest = PasswordHashParams::ForTest();

TEST(HashPassword, ReturnsEncodedArgon2idString) {
  Result<std::string> hash = HashPassword("correct horse", kTest);
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->rfind("$argon2id$v=19$", 0), 0u) << *hash;
}

TEST(HashPassword, UsesAFreshSaltEachTime) {
  Result<std::string> a = HashPassword("same", kTest);
  Result<std::string> b = HashPassword("same", kTest);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(HashPassword, FailsWithInternalWhenCostIsBelowMinimum) {
  Result<std::string> hash = HashPassword("x", PasswordHashParams{0, 0});
  ASSERT_FALSE(hash.ok());
  EXPECT_EQ(hash.error().code, ErrorCode::kInternal);
}

TEST(VerifyPassword, AcceptsTheRightPassword) {
  Result<std::string> hash = HashPassword("correct horse", kTest);
  ASSERT_TRUE(hash.ok());
  EXPECT_TRUE(VerifyPassword(*hash, "correct horse"));
}

TEST(VerifyPassword, RefusesAWrongPassword) {
  Result<std::string> hash = HashPassword("correct horse", kTest);
  ASSERT_TRUE(hash.ok());
  EXPECT_FALSE(VerifyPassword(*hash, "correct horsE"));
  EXPECT_FALSE(VerifyPassword(*hash, ""));
  EXPECT_FALSE(VerifyPassword(*hash, "correct horse "));
}

TEST(VerifyPassword, TreatsEmbeddedNulAsPartOfThePassword) {
  Result<std::string> hash = HashPassword(std::string("ab\0cd", 5), kTest);
  ASSERT_TRUE(hash.ok());
  EXPECT_TRUE(VerifyPassword(*hash, std::string("ab\0cd", 5)));
  EXPECT_FALSE(VerifyPassword(*hash, "ab"));
}

TEST(VerifyPassword, RefusesMalformedHashes) {
  EXPECT_FALSE(VerifyPassword("", "x"));
  EXPECT_FALSE(VerifyPassword("plaintext", "plaintext"));
  EXPECT_FALSE(VerifyPassword("$argon2id$v=19$m=8,t=1,p=1$garbage", "x"));
  Result<std::string> hash = HashPassword("x", kTest);
  ASSERT_TRUE(hash.ok());
  EXPECT_FALSE(VerifyPassword(*hash + std::string(1, '\0') + "junk", "x"));
}

TEST(PasswordNeedsRehash, IsFalseForSameCost) {
  Result<std::string> hash = HashPassword("x", kTest);
  ASSERT_TRUE(hash.ok());
  EXPECT_FALSE(PasswordNeedsRehash(*hash, kTest));
}

TEST(PasswordNeedsRehash, IsTrueWhenCostChanged) {
  Result<std::string> hash = HashPassword("x", kTest);
  ASSERT_TRUE(hash.ok());
  EXPECT_TRUE(PasswordNeedsRehash(*hash, PasswordHashParams::Interactive()));
  EXPECT_TRUE(PasswordNeedsRehash(*hash, PasswordHashParams{kTest.ops_limit + 1, kTest.mem_limit}));
}

TEST(PasswordNeedsRehash, IsTrueForMalformedHash) {
  EXPECT_TRUE(PasswordNeedsRehash("", kTest));
  EXPECT_TRUE(PasswordNeedsRehash("$2b$10$bcryptbcryptbcryptbcryp", kTest));
}

TEST(PasswordHashParams, InteractiveCostsMoreThanForTest) {
  const PasswordHashParams interactive = PasswordHashParams::Interactive();
  EXPECT_GT(interactive.ops_limit, kTest.ops_limit);
  EXPECT_GT(interactive.mem_limit, kTest.mem_limit);
  EXPECT_EQ(kTest.ops_limit, 1u);
  EXPECT_EQ(kTest.mem_limit, 8192u);
}

TEST(DummyPasswordHash, IsAStableValidHashPerParams) {
  const std::string a = DummyPasswordHash(kTest);
  EXPECT_EQ(a.rfind("$argon2id$", 0), 0u);
  EXPECT_EQ(DummyPasswordHash(kTest), a);
  EXPECT_FALSE(PasswordNeedsRehash(a, kTest));
  EXPECT_FALSE(VerifyPassword(a, ""));
  EXPECT_FALSE(VerifyPassword(a, "password"));
  const PasswordHashParams other{kTest.ops_limit + 1, kTest.mem_limit};
  const std::string b = DummyPasswordHash(other);
  EXPECT_NE(a, b);
  EXPECT_FALSE(PasswordNeedsRehash(b, other));
}

}  // namespace
}  // namespace agora::crypto
