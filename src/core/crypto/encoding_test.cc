#include "core/crypto/encoding.h"

#include <gtest/gtest.h>

#include "core/crypto/random.h"

namespace agora::crypto {
namespace {

TEST(Base64UrlEncode, MatchesRfc4648VectorsWithoutPadding) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
}

TEST(Base64UrlEncode, UsesUrlSafeAlphabet) {
  EXPECT_EQ(Base64UrlEncode(std::string("\xfb\xff", 2)), "-_8");
}

TEST(Base64UrlDecode, RoundTripsEveryLength) {
  for (size_t n = 0; n < 70; ++n) {
    const std::string bytes = RandomBytes(n);
    std::optional<std::string> back = Base64UrlDecode(Base64UrlEncode(bytes));
    ASSERT_TRUE(back.has_value()) << n;
    EXPECT_EQ(*back, bytes) << n;
  }
}

TEST(Base64UrlDecode, RefusesPadding) {
  EXPECT_EQ(Base64UrlDecode("Zg=="), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Zm8="), std::nullopt);
}

TEST(Base64UrlDecode, RefusesStandardAlphabetAndJunk) {
  EXPECT_EQ(Base64UrlDecode("+_8"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("-/8"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode(" Zg"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Zm9v\n"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Zm9v.YmFy"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode(std::string("Zg\0", 3)), std::nullopt);
}

TEST(Base64UrlDecode, RefusesImpossibleLengthAndNonCanonicalBits) {
  EXPECT_EQ(Base64UrlDecode("Z"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Zm9vY"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Zh"), std::nullopt);  // "Zg" with non-zero spare bits
}

TEST(HexEncode, IsLowercaseTwoCharsPerByte) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10\xab", 4)), "00ff10ab");
}

TEST(HexDecode, AcceptsBothCasesAndRoundTrips) {
  EXPECT_EQ(HexDecode("00FF10aB"), std::string("\x00\xff\x10\xab", 4));
  const std::string bytes = RandomBytes(33);
  EXPECT_EQ(HexDecode(HexEncode(bytes)), bytes);
}

TEST(HexDecode, RefusesOddLengthAndNonHex) {
  EXPECT_EQ(HexDecode("abc"), std::nullopt);
  EXPECT_EQ(HexDecode("zz"), std::nullopt);
  EXPECT_EQ(HexDecode("0x00"), std::nullopt);
  EXPECT_EQ(HexDecode("00 "), std::nullopt);
}

}  // namespace
}  // namespace agora::crypto
