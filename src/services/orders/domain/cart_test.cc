#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "core/db/db_testing.h"
#include "services/orders/domain/cart.h"
#include "services/orders/domain/cart_service.h"
#include "services/orders/store/sql_store.h"

namespace agora::orders {
namespace {

catalog::Listing Listing(std::string id, std::string seller, int64_t price, int64_t quantity,
                         std::string currency = "EUR") {
  catalog::Listing l;
  l.id = std::move(id);
  l.seller_id = std::move(seller);
  l.title = "Item " + l.id;
  l.price = {price, std::move(currency)};
  l.quantity = quantity;
  l.status = catalog::ListingStatus::kActive;
  return l;
}

TEST(PriceCart, PricesAtCurrentFiguresAndTotalsPerCurrency) {
  std::vector<CartLine> lines = {{"cit_1", "usr_b", "prd_a", 2, 10, 10},
                                 {"cit_2", "usr_b", "prd_b", 1, 20, 30},
                                 {"cit_3", "usr_b", "prd_gone", 4, 25, 25},
                                 {"cit_4", "usr_b", "prd_low", 3, 26, 26}};
  std::map<std::string, catalog::Listing> listings = {
      {"prd_a", Listing("prd_a", "usr_s", 1999, 5)},
      {"prd_b", Listing("prd_b", "usr_s", 500, 1, "USD")},
      {"prd_low", Listing("prd_low", "usr_s", 100, 2)}};
  CartView v = PriceCart(lines, listings);
  ASSERT_EQ(v.lines.size(), 4u);
  EXPECT_EQ(v.lines[0].status, LineStatus::kOk);
  EXPECT_EQ(v.lines[0].subtotal->amount, 3998);
  EXPECT_EQ(v.lines[2].status, LineStatus::kUnavailable);
  EXPECT_FALSE(v.lines[2].subtotal.has_value());
  EXPECT_EQ(v.lines[3].status, LineStatus::kInsufficientStock);
  EXPECT_EQ((v.totals), (std::map<std::string, int64_t>{{"EUR", 3998 + 300}, {"USD", 500}}))
      << "unavailable lines are left out, short ones still count";
  EXPECT_EQ(v.item_count, 10);
  EXPECT_EQ(v.updated_at_ms, 30);
  EXPECT_FALSE(PriceCart({}, {}).updated_at_ms.has_value());
}

TEST(CheckLine, RefusesOwnListingsAndMoreThanAvailable) {
  auto l = Listing("prd_a", "usr_s", 100, 2);
  EXPECT_TRUE(CheckLine(l, "usr_b", 2).ok());
  EXPECT_EQ(CheckLine(l, "usr_b", 3).error().type, "insufficient-stock");
  EXPECT_EQ(CheckLine(l, "usr_s", 1).error().type, "own-listing");
}

// Serves fixed listings; only GetActiveListing is used by the cart.
class FixedCatalog : public catalog::CatalogClient {
 public:
  std::mutex mu;
  std::map<std::string, catalog::Listing> active;
  Result<catalog::Listing> GetActiveListing(std::string_view id) override {
    std::lock_guard lock(mu);
    auto it = active.find(std::string(id));
    if (it == active.end()) return Error::NotFound("No such listing").WithType("listing-not-found");
    return it->second;
  }
  Result<catalog::Reservation> Reserve(std::string_view, const std::vector<catalog::ReservationItem>&,
                                       std::chrono::milliseconds) override {
    return Error::Internal("unused");
  }
  Result<catalog::Reservation> CommitReservation(std::string_view) override { return Error::Internal("unused"); }
  Result<catalog::Reservation> ReleaseReservation(std::string_view) override { return Error::Internal("unused"); }
  Result<std::vector<catalog::Category>> Categories() override { return Error::Internal("unused"); }
  Result<std::vector<catalog::Listing>> ListingsAfter(std::string_view, int) override {
    return Error::Internal("unused");
  }
  Result<std::vector<events::Event>> EventsAfter(int64_t, int) override { return Error::Internal("unused"); }
  Result<int64_t> LastEventSeq() override { return Error::Internal("unused"); }
};

class CartServiceTest : public ::testing::TestWithParam<db::Dialect> {
 protected:
  void SetUp() override {
    if (auto why = db::testing::SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    scratch_.emplace(GetParam());
    db_ = std::move(db::Database::Open(scratch_->options()).value());
    ASSERT_TRUE(db_->Migrate("orders", OrdersMigrations()).ok());
    store_ = std::make_unique<CartStore>(*db_);
    service_ = std::make_unique<CartService>(*store_, catalog_, clock_);
    catalog_.active = {{"prd_a", Listing("prd_a", "usr_s", 1999, 5)}, {"prd_b", Listing("prd_b", "usr_s", 500, 100)}};
  }
  void TearDown() override {
    service_.reset();
    store_.reset();
    db_.reset();
    scratch_.reset();
  }

  ManualClock clock_;
  FixedCatalog catalog_;
  std::optional<db::testing::ScratchDatabase> scratch_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<CartStore> store_;
  std::unique_ptr<CartService> service_;
};

TEST_P(CartServiceTest, AddMergesPatchesAndRemoves) {
  auto first = service_->Add("usr_b", "prd_a", 2);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first->created);
  auto again = service_->Add("usr_b", "prd_a", 1);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->line.id, first->line.id);
  EXPECT_EQ(again->line.quantity, 3);
  EXPECT_EQ(service_->Add("usr_b", "prd_a", 3).error().type, "insufficient-stock") << "3 + 3 > 5";
  EXPECT_EQ(service_->Add("usr_s", "prd_a", 1).error().type, "own-listing");
  EXPECT_EQ(service_->Add("usr_b", "prd_missing", 1).error().type, "listing-not-found");
  EXPECT_EQ(service_->Add("usr_b", "prd_b", 100).value().line.quantity, 100);
  EXPECT_EQ(service_->Add("usr_b", "prd_b", 1).error().fields.at(0).field, "quantity") << "a line holds 100";

  ASSERT_TRUE(service_->SetQuantity("usr_b", first->line.id, 5).ok());
  EXPECT_EQ(service_->SetQuantity("usr_b", first->line.id, 6).error().type, "insufficient-stock");
  EXPECT_EQ(service_->SetQuantity("usr_other", first->line.id, 1).error().type, "cart-item-not-found");
  EXPECT_EQ(service_->Remove("usr_other", first->line.id).error().type, "cart-item-not-found");

  auto view = service_->View("usr_b").value();
  ASSERT_EQ(view.lines.size(), 2u);
  EXPECT_EQ(view.totals.at("EUR"), 5 * 1999 + 100 * 500);
  EXPECT_TRUE(service_->View("usr_other")->lines.empty()) << "carts are per buyer";

  ASSERT_TRUE(service_->Remove("usr_b", first->line.id).ok());
  EXPECT_EQ(service_->Remove("usr_b", first->line.id).error().type, "cart-item-not-found");
  EXPECT_EQ(service_->View("usr_b")->lines.size(), 1u);
}

TEST_P(CartServiceTest, ACartHoldsAtMostFiftyLines) {
  for (size_t i = 0; i < CartLimits::kLinesMax; ++i) {
    const std::string id = "prd_" + std::to_string(i);
    catalog_.active[id] = Listing(id, "usr_s", 100, 1);
    ASSERT_TRUE(service_->Add("usr_b", id, 1).ok()) << i;
  }
  catalog_.active["prd_more"] = Listing("prd_more", "usr_s", 100, 1);
  EXPECT_EQ(service_->Add("usr_b", "prd_more", 1).error().type, "cart-full");
}

TEST_P(CartServiceTest, ConcurrentAddsOfOneProductMakeOneLine) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = service_->Add("usr_b", "prd_b", 1);
      if (r.ok()) ++ok;
      else ADD_FAILURE() << r.error().message;
    });
  }
  for (auto& t : threads) t.join();
  auto view = service_->View("usr_b").value();
  ASSERT_EQ(view.lines.size(), 1u);
  EXPECT_EQ(view.lines[0].line.quantity, ok.load());
  EXPECT_EQ(ok.load(), 8);
}

INSTANTIATE_TEST_SUITE_P(Drivers, CartServiceTest, db::testing::AllDialects(), db::testing::DialectParamName);

}  // namespace
}  // namespace agora::orders
