#include "services/identity/domain/policy.h"

#include <gtest/gtest.h>

namespace agora::identity {
namespace {

TEST(NormalizeEmail, LowercasesAndTrims) {
  EXPECT_EQ(NormalizeEmail("  Ada.Lovelace@Example.COM ").value(), "ada.lovelace@example.com");
}

TEST(NormalizeEmail, RefusesImplausibleAddresses) {
  for (const char* bad : {"", "ada", "@example.com", "ada@", "ada@example", "ada@@example.com", "a b@example.com",
                          "ada@example..com", "ada@.example.com", "ada@exa_mple.com"}) {
    EXPECT_FALSE(NormalizeEmail(bad)) << bad;
  }
  EXPECT_FALSE(NormalizeEmail(std::string(65, 'a') + "@example.com"));
}

TEST(CheckPassword, RefusesShortPasswords) {
  EXPECT_TRUE(CheckPassword("Tr0ub4d", "ada@example.com", "Ada"));
  EXPECT_FALSE(CheckPassword("correct horse battery", "ada@example.com", "Ada"));
}

TEST(CheckPassword, AllowsLongPassphrasesUpTo128) {
  EXPECT_FALSE(CheckPassword(std::string(64, 'x') + "y", "ada@example.com", "Ada"));
  EXPECT_TRUE(CheckPassword(std::string(129, 'z') + "q", "ada@example.com", "Ada"));
}

TEST(CheckPassword, RefusesCommonPasswordsAndVariants) {
  for (const char* common : {"password", "Password123", "qwertyuiop", "iloveyou!", "12345678", "1password"}) {
    EXPECT_TRUE(CheckPassword(common, "ada@example.com", "Ada")) << common;
  }
}

TEST(CheckPassword, RefusesTrivialSequences) {
  EXPECT_TRUE(CheckPassword("aaaaaaaaaa", "ada@example.com", "Ada"));
  EXPECT_TRUE(CheckPassword("abcdefghij", "ada@example.com", "Ada"));
  EXPECT_TRUE(CheckPassword("98765432", "ada@example.com", "Ada"));
}

TEST(CheckPassword, RefusesContextSpecificWords) {
  EXPECT_TRUE(CheckPassword("ada@example.com", "ada@example.com", "Ada"));
  EXPECT_TRUE(CheckPassword("my-lovelace-pw", "lovelace@example.com", "Ada"));
  EXPECT_TRUE(CheckPassword("Ada Lovelace", "x@example.com", "ada lovelace"));
}

TEST(CheckPassword, CountsCharactersNotBytes) {
  // Eight characters, sixteen bytes.
  EXPECT_FALSE(CheckPassword("éèêëàâäô", "x@example.com", "X"));
}

TEST(CheckDisplayName, BoundsAndControlCharacters) {
  EXPECT_FALSE(CheckDisplayName("Ada"));
  EXPECT_TRUE(CheckDisplayName("   "));
  EXPECT_TRUE(CheckDisplayName(std::string(65, 'a')));
  EXPECT_TRUE(CheckDisplayName("a\x01b"));
}

}  // namespace
}  // namespace agora::identity
