#include "services/catalog/domain/demo_data.h"

#include <set>

#include <gtest/gtest.h>

namespace agora::catalog {
namespace {

TEST(DemoListings, AreValidVariedAndDeterministic) {
  auto listings = DemoListings(2000, 7, 0);
  ASSERT_EQ(listings.size(), 2000u);
  std::set<std::string> titles, categories, conditions;
  std::set<int64_t> prices;
  for (const auto& in : listings) {
    auto errors = ValidateListingInput(in, true);
    ASSERT_TRUE(errors.empty()) << *in.title << ": " << errors[0].field << " " << errors[0].message;
    titles.insert(*in.title);
    categories.insert(*in.category_id);
    conditions.insert(*in.condition);
    prices.insert(in.price->amount);
  }
  EXPECT_GT(titles.size(), 1000u);
  EXPECT_GE(categories.size(), 20u);
  EXPECT_EQ(conditions.size(), 5u);
  EXPECT_GT(prices.size(), 500u);
  EXPECT_EQ(*DemoListings(5, 7, 0)[3].title, *listings[3].title) << "same seed, same data";
  EXPECT_NE(*DemoListings(5, 7, 100)[0].title + *DemoListings(5, 7, 100)[1].title,
            *listings[0].title + *listings[1].title);
}

}  // namespace
}  // namespace agora::catalog
