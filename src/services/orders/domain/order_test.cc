#include <gtest/gtest.h>

#include "services/orders/domain/order.h"

namespace agora::orders {
namespace {

catalog::Listing Listing(std::string id, std::string seller, int64_t price, std::string currency = "EUR",
                         std::string category = "cat_phones", std::vector<catalog::CategoryRef> path = {}) {
  catalog::Listing l;
  l.id = std::move(id);
  l.seller_id = std::move(seller);
  l.title = "Item " + l.id;
  l.price = {price, std::move(currency)};
  l.quantity = 10;
  l.category_id = std::move(category);
  l.category_path = std::move(path);
  return l;
}

TEST(OrderStateMachine, AllowsTheJourneyInOrder) {
  EXPECT_TRUE(CheckTransition(OrderStatus::kPendingPayment, OrderStatus::kPaid, Actor::kSystem).ok());
  EXPECT_TRUE(CheckTransition(OrderStatus::kPaid, OrderStatus::kShipped, Actor::kSeller).ok());
  EXPECT_TRUE(CheckTransition(OrderStatus::kShipped, OrderStatus::kDelivered, Actor::kBuyer).ok());
  EXPECT_TRUE(CheckTransition(OrderStatus::kShipped, OrderStatus::kDelivered, Actor::kSystem).ok());
  EXPECT_TRUE(CheckTransition(OrderStatus::kDelivered, OrderStatus::kCompleted, Actor::kSystem).ok());
}

TEST(OrderStateMachine, RefusesMovesOutsideTheMachine) {
  auto ship_unpaid = CheckTransition(OrderStatus::kPendingPayment, OrderStatus::kShipped, Actor::kSeller);
  ASSERT_FALSE(ship_unpaid.ok());
  EXPECT_EQ(ship_unpaid.error().code, ErrorCode::kConflict);
  EXPECT_EQ(ship_unpaid.error().type, "order-transition-not-allowed");
  EXPECT_EQ(ship_unpaid.error().message, "Cannot ship an order that is pending_payment");
  EXPECT_FALSE(CheckTransition(OrderStatus::kShipped, OrderStatus::kCancelled, Actor::kBuyer).ok());
  EXPECT_FALSE(CheckTransition(OrderStatus::kCompleted, OrderStatus::kDisputed, Actor::kBuyer).ok());
  EXPECT_FALSE(CheckTransition(OrderStatus::kCancelled, OrderStatus::kPaid, Actor::kSystem).ok());
  EXPECT_FALSE(CheckTransition(OrderStatus::kRefunded, OrderStatus::kCompleted, Actor::kAdmin).ok());
  EXPECT_FALSE(CheckTransition(OrderStatus::kPaid, OrderStatus::kPaid, Actor::kSystem).ok());
}

TEST(OrderStateMachine, EachMoveBelongsToItsActors) {
  auto buyer_ships = CheckTransition(OrderStatus::kPaid, OrderStatus::kShipped, Actor::kBuyer);
  ASSERT_FALSE(buyer_ships.ok());
  EXPECT_EQ(buyer_ships.error().code, ErrorCode::kPermissionDenied);
  EXPECT_FALSE(CheckTransition(OrderStatus::kShipped, OrderStatus::kDelivered, Actor::kSeller).ok());
  EXPECT_FALSE(CheckTransition(OrderStatus::kPaid, OrderStatus::kDisputed, Actor::kSeller).ok());
  EXPECT_FALSE(CheckTransition(OrderStatus::kDisputed, OrderStatus::kRefunded, Actor::kBuyer).ok());
  EXPECT_FALSE(CheckTransition(OrderStatus::kPendingPayment, OrderStatus::kPaid, Actor::kBuyer).ok());
  EXPECT_TRUE(CheckTransition(OrderStatus::kDisputed, OrderStatus::kRefunded, Actor::kAdmin).ok());
  EXPECT_TRUE(CheckTransition(OrderStatus::kPaid, OrderStatus::kCancelled, Actor::kSeller).ok());
}

TEST(OrderStatus, NamesRoundTrip) {
  for (auto s : {OrderStatus::kPendingPayment, OrderStatus::kPaid, OrderStatus::kShipped, OrderStatus::kDelivered,
                 OrderStatus::kCompleted, OrderStatus::kCancelled, OrderStatus::kDisputed, OrderStatus::kRefunded}) {
    EXPECT_EQ(ParseOrderStatus(OrderStatusName(s)), s);
  }
  EXPECT_FALSE(ParseOrderStatus("lost").has_value());
}

TEST(Commission, MostSpecificCategoryWins) {
  CommissionPolicy p{1000, {{"cat_electronics", 500}, {"cat_phones", 800}}};
  const std::vector<catalog::CategoryRef> path = {{"cat_electronics", "Electronics"}, {"cat_phones", "Phones"}};
  EXPECT_EQ(p.RateFor(path, "cat_phones"), 800);
  const std::vector<catalog::CategoryRef> laptop = {{"cat_electronics", "Electronics"}, {"cat_laptops", "Laptops"}};
  EXPECT_EQ(p.RateFor(laptop, "cat_laptops"), 500);
  EXPECT_EQ(p.RateFor({{"cat_bikes", "Bikes"}}, "cat_bikes"), 1000);
}

TEST(Commission, OrderRateIsWeightedBySubtotal) {
  CommissionPolicy p;
  EXPECT_EQ(p.OrderRate({{3000, 500}, {1000, 1000}}), 625);
  EXPECT_EQ(p.OrderRate({{1, 1000}}), 1000);
  EXPECT_EQ(p.OrderRate({}), 1000);
}

TEST(Commission, ParsesCategoryRates) {
  auto ok = ParseCategoryRates("cat_a=500, cat_b=0,cat_c=10000");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->at("cat_a"), 500);
  EXPECT_EQ(ok->at("cat_b"), 0);
  EXPECT_EQ(ok->at("cat_c"), 10000);
  EXPECT_TRUE(ParseCategoryRates("")->empty());
  for (const char* bad : {"cat_a", "cat_a=", "=5", "cat_a=-1", "cat_a=10001", "cat_a=5x"}) {
    EXPECT_FALSE(ParseCategoryRates(bad).ok()) << bad;
  }
}

TEST(PlanOrders, OneOrderPerSellerWithSnapshots) {
  CommissionPolicy p{1000, {{"cat_books", 500}}};
  std::vector<CheckoutLine> lines = {{Listing("prd_1", "usr_a", 1000), 2},
                                     {Listing("prd_2", "usr_b", 250, "EUR", "cat_books"), 4},
                                     {Listing("prd_3", "usr_a", 3000, "EUR", "cat_books"), 1}};
  auto plan = PlanOrders(lines, p);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ((*plan)[0].seller_id, "usr_a");
  EXPECT_EQ((*plan)[0].subtotal, 5000);
  EXPECT_EQ((*plan)[0].items.size(), 2u);
  EXPECT_EQ((*plan)[0].items[0].title, "Item prd_1");
  EXPECT_EQ((*plan)[0].items[0].unit_price, 1000);
  EXPECT_EQ((*plan)[0].commission_bps, 700);  // (2000*1000 + 3000*500) / 5000
  EXPECT_EQ((*plan)[1].seller_id, "usr_b");
  EXPECT_EQ((*plan)[1].subtotal, 1000);
  EXPECT_EQ((*plan)[1].commission_bps, 500);
}

TEST(PlanOrders, RefusesMixedCurrencies) {
  std::vector<CheckoutLine> lines = {{Listing("prd_1", "usr_a", 1000, "EUR"), 1},
                                     {Listing("prd_2", "usr_b", 1000, "USD"), 1}};
  auto plan = PlanOrders(lines, CommissionPolicy{});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().type, "currency-mismatch");
}

}  // namespace
}  // namespace agora::orders
