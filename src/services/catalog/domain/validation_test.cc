#include <gtest/gtest.h>

#include "services/catalog/domain/service.h"

namespace agora::catalog {
namespace {

ListingInput ValidInput() {
  ListingInput in;
  in.title = "Road bike, 56 cm frame";
  in.description = "Ridden twice.\nKept indoors.";
  in.price = Money{45000, "EUR"};
  in.quantity = 1;
  in.category_id = "cat_00000000000000000000000501";
  in.condition = "like_new";
  in.attributes = {{{"brand", "Canyon"}, {"frame size", "56 cm"}}};
  in.images = {{"https://img.example.com/bike.jpg"}};
  in.shipping = {{ShippingOption{"pickup", {0, "EUR"}, 0, 0}}};
  return in;
}

std::vector<std::string> Fields(const std::vector<FieldError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.field);
  return out;
}

TEST(ValidateListingInput, AcceptsAValidListing) {
  EXPECT_TRUE(ValidateListingInput(ValidInput(), true).empty());
}

TEST(ValidateListingInput, CreateNeedsTitlePriceCategoryAndCondition) {
  auto errors = ValidateListingInput(ListingInput{}, true);
  EXPECT_EQ(Fields(errors), (std::vector<std::string>{"title", "price", "category_id", "condition"}));
  EXPECT_TRUE(ValidateListingInput(ListingInput{}, false).empty()) << "a patch may change nothing";
}

TEST(ValidateListingInput, RefusesPricesOutOfRangeAndUnknownCurrencies) {
  for (auto [money, field] : {std::pair{Money{-1, "EUR"}, "price.amount"},
                              std::pair{Money{Limits::kPriceMax + 1, "EUR"}, "price.amount"},
                              std::pair{Money{100, "XYZ"}, "price.currency"},
                              std::pair{Money{100, "eur"}, "price.currency"},
                              std::pair{Money{100, ""}, "price.currency"}}) {
    ListingInput in = ValidInput();
    in.price = money;
    EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{field}) << money.currency;
  }
  ListingInput free = ValidInput();
  free.price = Money{0, "JPY"};
  EXPECT_TRUE(ValidateListingInput(free, true).empty()) << "a free item is allowed";
}

TEST(ValidateListingInput, CountsTitleLengthInCodePoints) {
  ListingInput in = ValidInput();
  std::string title;
  for (size_t i = 0; i < Limits::kTitleMax; ++i) title += "é";  // 2 bytes each
  in.title = title;
  EXPECT_TRUE(ValidateListingInput(in, true).empty());
  in.title = title + "é";
  EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"title"});
  in.title = "ab";
  EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"title"});
  in.title = "tab\there";
  EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"title"});
}

TEST(ValidateListingInput, DescriptionMayHoldNewlinesButNotOtherControls) {
  ListingInput in = ValidInput();
  in.description = std::string(Limits::kDescriptionMax + 1, 'a');
  EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"description"});
  in.description = std::string("bell\x07");
  EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"description"});
}

TEST(ValidateListingInput, BoundsQuantityAttributesImagesAndShipping) {
  ListingInput in = ValidInput();
  in.quantity = Limits::kQuantityMax + 1;
  EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"quantity"});

  in = ValidInput();
  in.attributes->clear();
  for (size_t i = 0; i <= Limits::kAttributesMax; ++i) in.attributes->emplace_back("k" + std::to_string(i), "v");
  EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"attributes"});

  in = ValidInput();
  in.attributes = {{{"colour", std::string(Limits::kAttributeValueMax + 1, 'x')}}};
  EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"attributes.colour"});

  in = ValidInput();
  in.images = std::vector<std::string>(Limits::kImagesMax + 1, "https://img.example.com/a.jpg");
  EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"images"});

  in = ValidInput();
  in.shipping = {{ShippingOption{"express", {500, "EUR"}, 5, 2}}};
  EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"shipping.0.max_days"});
}

TEST(ValidateListingInput, ImagesMustBeHttpsUrlsWithoutCredentials) {
  for (const char* url : {"http://img.example.com/a.jpg", "ftp://x/y", "https://", "https:///path",
                          "https://user:pw@img.example.com/a.jpg", "https://img.example.com/a b.jpg",
                          "javascript:alert(1)", "https://img.example.com/\"onload=x"}) {
    ListingInput in = ValidInput();
    in.images = {{url}};
    EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"images.0"}) << url;
  }
  ListingInput in = ValidInput();
  in.images = {{"https://cdn.example.com/p/1.jpg?w=800#top"}};
  EXPECT_TRUE(ValidateListingInput(in, true).empty());
}

TEST(ValidateListingInput, ConditionMustBeKnown) {
  ListingInput in = ValidInput();
  in.condition = "mint";
  EXPECT_EQ(Fields(ValidateListingInput(in, true)), std::vector<std::string>{"condition"});
}

TEST(IsIsoCurrency, KnowsCommonCodesOnly) {
  for (const char* c : {"EUR", "USD", "GBP", "JPY", "CHF", "SEK"}) EXPECT_TRUE(IsIsoCurrency(c)) << c;
  for (const char* c : {"XYZ", "usd", "EU", "EURO", ""}) EXPECT_FALSE(IsIsoCurrency(c)) << c;
}

}  // namespace
}  // namespace agora::catalog
