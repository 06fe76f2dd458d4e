#include "core/card_scan.h"

#include <gtest/gtest.h>

namespace agora {
namespace {

TEST(LuhnValid, KnownNumbers) {
  EXPECT_TRUE(LuhnValid("4242424242424242"));
  EXPECT_TRUE(LuhnValid("378282246310005"));
  EXPECT_TRUE(LuhnValid("5555555555554444"));
  EXPECT_FALSE(LuhnValid("4242424242424241"));
  EXPECT_FALSE(LuhnValid(""));
  EXPECT_FALSE(LuhnValid("42a2"));
}

TEST(ContainsCardNumber, FindsCardsPlainOrGroupedAnywhere) {
  for (const char* text : {
           "4242424242424242",
           R"({"note":"my card is 4242 4242 4242 4242, thanks"})",
           R"({"card":"4242-4242-4242-4242"})",
           R"({"quantity":4000000000000002})",
           R"({"x":"amex 3782 822463 10005"})",
           R"({"a":{"b":["6011111111111117"]}})",
           "order 12 4242 4242 4242 4242",
           "4242424242424242\n",
       }) {
    EXPECT_TRUE(ContainsCardNumber(text)) << text;
  }
}

TEST(ContainsCardNumber, LeavesOtherNumbersAlone) {
  for (const char* text : {
           R"({"iban":"BE68539007547034"})",              // digits glued to letters
           R"({"iban":"DE89 3704 0044 0532 0130 00"})",   // 20 digits, and glued to "DE"
           R"({"price":{"amount":1999,"currency":"EUR"}})",
           R"({"phone":"+1 415-555-0100"})",
           "4242424242424241",                            // fails Luhn
           "42424242424242420",                           // 17 digits failing Luhn
           "1.4242424242424242",                          // a decimal
           "4242424242424242.5",
           "x4242424242424242",
           "4242424242424242x",
           "4242  4242  4242  4242",                      // double spaces are not a grouping
           R"({"id":"prd_01M8HJNJ25910Q16WXVWSDRQFA"})",
           "",
       }) {
    EXPECT_FALSE(ContainsCardNumber(text)) << text;
  }
}

}  // namespace
}  // namespace agora
