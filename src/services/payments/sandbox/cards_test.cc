#include "services/payments/sandbox/cards.h"

#include <gtest/gtest.h>

namespace agora::payments::sandbox {
namespace {

constexpr int kYear = 2026, kMonth = 11;

CardInput Card(std::string number, int64_t month = 12, int64_t year = 2030, std::string cvc = "123") {
  return CardInput{std::move(number), month, year, std::move(cvc)};
}

std::vector<std::string> Fields(const Result<CardSummary>& r) {
  std::vector<std::string> out;
  if (!r.ok()) {
    for (const auto& f : r.error().fields) out.push_back(f.field);
  }
  return out;
}

TEST(CheckCard, StripesTestCardsBehaveAsDocumented) {
  struct Case {
    const char* number;
    Behavior behavior;
    const char* brand;
  };
  for (const Case& c : {Case{"4242424242424242", Behavior::kSucceed, "visa"},
                        Case{"4242 4242 4242 4242", Behavior::kSucceed, "visa"},
                        Case{"4000000000000002", Behavior::kDecline, "visa"},
                        Case{"4000-0000-0000-9995", Behavior::kInsufficientFunds, "visa"},
                        Case{"4000002500003155", Behavior::kRequiresAction, "visa"},
                        Case{"4000000000000119", Behavior::kNetworkError, "visa"},
                        Case{"5555555555554444", Behavior::kSucceed, "mastercard"},
                        Case{"2223003122003222", Behavior::kSucceed, "mastercard"},
                        Case{"6011111111111117", Behavior::kSucceed, "discover"}}) {
    auto r = CheckCard(Card(c.number), kYear, kMonth);
    ASSERT_TRUE(r.ok()) << c.number << ": " << r.error().message;
    EXPECT_EQ(r->behavior, c.behavior) << c.number;
    EXPECT_EQ(r->brand, c.brand) << c.number;
    EXPECT_EQ(r->last4, std::string(c.number).substr(std::string(c.number).size() - 4));
  }
  auto amex = CheckCard(Card("378282246310005", 1, 2031, "1234"), kYear, kMonth);
  ASSERT_TRUE(amex.ok());
  EXPECT_EQ(amex->brand, "amex");
}

TEST(CheckCard, RefusesBadNumbersExpiriesAndCvcs) {
  EXPECT_EQ(Fields(CheckCard(Card("4242424242424241"), kYear, kMonth)), std::vector<std::string>{"card_number"});
  EXPECT_EQ(Fields(CheckCard(Card("424242424242"), kYear, kMonth)), std::vector<std::string>{"card_number"});
  EXPECT_EQ(Fields(CheckCard(Card("4242x424242424242"), kYear, kMonth)), std::vector<std::string>{"card_number"});
  EXPECT_EQ(Fields(CheckCard(Card("4242424242424242", 13), kYear, kMonth)), std::vector<std::string>{"exp_month"});
  EXPECT_EQ(Fields(CheckCard(Card("4242424242424242", 10, 2026), kYear, kMonth)),
            std::vector<std::string>{"exp_month"})
      << "expired last month";
  EXPECT_TRUE(CheckCard(Card("4242424242424242", 11, 2026), kYear, kMonth).ok()) << "valid to the end of the month";
  EXPECT_EQ(Fields(CheckCard(Card("4242424242424242", 1, 2025), kYear, kMonth)), std::vector<std::string>{"exp_year"});
  EXPECT_EQ(Fields(CheckCard(Card("4242424242424242", 1, 2047), kYear, kMonth)), std::vector<std::string>{"exp_year"});
  EXPECT_EQ(Fields(CheckCard(Card("4242424242424242", 12, 2030, "12"), kYear, kMonth)),
            std::vector<std::string>{"cvc"});
  EXPECT_EQ(Fields(CheckCard(Card("4242424242424242", 12, 2030, "1234"), kYear, kMonth)),
            std::vector<std::string>{"cvc"});
  EXPECT_EQ(Fields(CheckCard(Card("378282246310005", 12, 2030, "123"), kYear, kMonth)),
            std::vector<std::string>{"cvc"})
      << "American Express has 4";
}

TEST(Behavior, NamesRoundTrip) {
  for (Behavior b : {Behavior::kSucceed, Behavior::kDecline, Behavior::kInsufficientFunds, Behavior::kRequiresAction,
                     Behavior::kNetworkError}) {
    EXPECT_EQ(ParseBehavior(BehaviorName(b)), b);
  }
  EXPECT_FALSE(ParseBehavior("nope").has_value());
}

}  // namespace
}  // namespace agora::payments::sandbox
