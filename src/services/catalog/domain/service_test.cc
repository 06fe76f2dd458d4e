// The catalog's rules against the real store, on SQLite and on PostgreSQL.
#include "services/catalog/domain/service.h"

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "core/db/db_testing.h"
#include "core/events/events.h"
#include "services/catalog/store/sql_store.h"

namespace agora::catalog {
namespace {

constexpr const char* kPhones = "cat_00000000000000000000000101";
constexpr const char* kElectronics = "cat_00000000000000000000000100";
constexpr const char* kBooks = "cat_00000000000000000000000401";

class CatalogServiceTest : public ::testing::TestWithParam<db::Dialect> {
 protected:
  void SetUp() override {
    if (auto why = db::testing::SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    scratch_.emplace(GetParam());
    db::Options options = scratch_->options();
    options.pool_size = 24;
    db_ = std::move(db::Database::Open(options).value());
    ASSERT_TRUE(db_->Migrate("catalog", CatalogMigrations()).ok());
    ASSERT_TRUE(db_->Migrate("catalog.events", events::Migrations()).ok());
    store_ = std::make_unique<SqlCatalogStore>(*db_, GetParam() == db::Dialect::kSqlite);
    service_ = std::make_unique<CatalogService>(CatalogOptions{}, *store_, clock_);
  }
  void TearDown() override {
    service_.reset();
    store_.reset();
    db_.reset();
    scratch_.reset();
  }

  ListingInput Input(std::string title = "Blue phone case", int64_t price = 1999, int64_t quantity = 5,
                     std::string category = kPhones) {
    ListingInput in;
    in.title = std::move(title);
    in.price = Money{price, "EUR"};
    in.quantity = quantity;
    in.category_id = std::move(category);
    in.condition = "new";
    return in;
  }

  Listing Active(const ListingInput& in) {
    auto l = service_->CreateListing(seller_, in);
    EXPECT_TRUE(l.ok()) << l.error().message;
    auto p = service_->PublishListing(seller_, l->id, std::nullopt);
    EXPECT_TRUE(p.ok()) << p.error().message;
    return *p;
  }

  std::vector<events::Event> Outbox() { return service_->EventsAfter(0, 10000).value(); }

  ManualClock clock_;
  std::optional<db::testing::ScratchDatabase> scratch_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<SqlCatalogStore> store_;
  std::unique_ptr<CatalogService> service_;
  Actor seller_{"usr_seller", false};
  Actor other_{"usr_other", false};
  Actor admin_{"usr_admin", true};
};

TEST_P(CatalogServiceTest, ListingLifecycleWritesAnEventPerChange) {
  auto created = service_->CreateListing(seller_, Input());
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(created->status, ListingStatus::kDraft);
  EXPECT_EQ(created->version, 1);
  ASSERT_EQ(created->category_path.size(), 2u);
  EXPECT_EQ(created->category_path[0].id, kElectronics);

  EXPECT_EQ(service_->GetListing(nullptr, created->id).error().code, ErrorCode::kNotFound) << "drafts are private";
  EXPECT_TRUE(service_->GetListing(&seller_, created->id).ok());

  auto published = service_->PublishListing(seller_, created->id, 1);
  ASSERT_TRUE(published.ok());
  EXPECT_EQ(published->status, ListingStatus::kActive);
  EXPECT_EQ(published->version, 2);
  ASSERT_TRUE(published->published_at_ms.has_value());
  EXPECT_TRUE(service_->GetListing(nullptr, created->id).ok());

  ListingInput patch;
  patch.title = "Red phone case";
  auto updated = service_->UpdateListing(seller_, created->id, 2, patch);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->title, "Red phone case");
  EXPECT_EQ(updated->price.amount, 1999) << "a patch leaves other fields alone";

  ASSERT_TRUE(service_->UnpublishListing(seller_, created->id, std::nullopt).ok());
  auto archived = service_->ArchiveListing(seller_, created->id, std::nullopt);
  ASSERT_TRUE(archived.ok());
  EXPECT_EQ(archived->status, ListingStatus::kArchived);
  EXPECT_EQ(service_->PublishListing(seller_, created->id, std::nullopt).error().type, "listing-archived");
  EXPECT_EQ(service_->UpdateListing(seller_, created->id, archived->version, patch).error().type, "listing-archived");

  std::vector<std::string> types;
  for (const auto& e : Outbox()) {
    types.push_back(e.type);
    EXPECT_EQ(e.source, "catalog");
  }
  EXPECT_EQ(types, (std::vector<std::string>{"listing.created", "listing.updated", "listing.updated",
                                             "listing.updated", "listing.archived"}));
  auto last = boost::json::parse(Outbox().back().payload).as_object();
  EXPECT_EQ(last.at("version").as_int64(), archived->version);
  EXPECT_EQ(last.at("status").as_string(), "archived");
}

TEST_P(CatalogServiceTest, OnlyTheSellerOrAnAdminMayChangeAListingAndOthersSeeNothing) {
  Listing l = Active(Input());
  ListingInput patch;
  patch.title = "Hijacked";
  auto r = service_->UpdateListing(other_, l.id, l.version, patch);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound) << "another seller gets 404, not a hint";
  EXPECT_EQ(service_->ArchiveListing(other_, l.id, std::nullopt).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(service_->AdjustInventory(other_, l.id, -1, std::nullopt, std::nullopt, "").error().code,
            ErrorCode::kNotFound);
  auto draft = service_->CreateListing(seller_, Input("Hidden draft"));
  EXPECT_EQ(service_->GetListing(&other_, draft->id).error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(service_->GetListing(&admin_, draft->id).ok());
  EXPECT_TRUE(service_->UpdateListing(admin_, l.id, l.version, patch).ok());
  EXPECT_EQ(Outbox().size(), 4u) << "refused changes wrote no events";
}

TEST_P(CatalogServiceTest, AStaleVersionIsRefusedAndNothingChanges) {
  Listing l = Active(Input());
  ListingInput patch;
  patch.title = "First writer";
  ASSERT_TRUE(service_->UpdateListing(seller_, l.id, l.version, patch).ok());
  patch.title = "Second writer";
  auto stale = service_->UpdateListing(seller_, l.id, l.version, patch);
  EXPECT_EQ(stale.error().type, "stale-version");
  EXPECT_EQ(service_->GetListing(nullptr, l.id)->title, "First writer");
}

TEST_P(CatalogServiceTest, UnknownCategoryIsAValidationError) {
  auto r = service_->CreateListing(seller_, Input("Thing", 100, 1, "cat_00000000000000000000009999"));
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.error().fields.size(), 1u);
  EXPECT_EQ(r.error().fields[0].field, "category_id");
  EXPECT_TRUE(Outbox().empty());
}

TEST_P(CatalogServiceTest, InventoryNeverGoesNegative) {
  Listing l = Active(Input("Lamp", 500, 2));
  EXPECT_EQ(service_->AdjustInventory(seller_, l.id, -3, std::nullopt, std::nullopt, "").error().type,
            "insufficient-stock");
  auto down = service_->AdjustInventory(seller_, l.id, -2, std::nullopt, std::nullopt, "sold elsewhere");
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->quantity, 0);
  auto set = service_->AdjustInventory(seller_, l.id, std::nullopt, 7, std::nullopt, "");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->quantity, 7);
  auto e = boost::json::parse(Outbox().back().payload).as_object();
  EXPECT_EQ(Outbox().back().type, "inventory.changed");
  EXPECT_EQ(e.at("quantity").as_int64(), 7);
  EXPECT_EQ(e.at("version").as_int64(), set->version);
}

// The contract of the issue: many concurrent reservations against a small
// stock; exactly the available quantity succeeds, never more.
TEST_P(CatalogServiceTest, RacingReservationsNeverOversell) {
  constexpr int kStock = 7;
  constexpr int kThreads = 8;
  constexpr int kAttemptsPerThread = 5;
  Listing l = Active(Input("Last few concert tickets", 4500, kStock));
  std::atomic<int> held{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAttemptsPerThread; ++i) {
        auto r = service_->Reserve("checkout_" + std::to_string(t), {{l.id, 1}}, std::chrono::minutes(5));
        if (r.ok()) {
          ++held;
        } else if (r.error().type == "insufficient-stock") {
          ++refused;
        } else {
          ++other;
          ADD_FAILURE() << r.error().message;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(held.load(), kStock);
  EXPECT_EQ(refused.load(), kThreads * kAttemptsPerThread - kStock);
  EXPECT_EQ(other.load(), 0);
  auto after = service_->GetListing(&seller_, l.id);
  EXPECT_EQ(after->quantity, 0);
  EXPECT_EQ(after->reserved, kStock);
}

TEST_P(CatalogServiceTest, ReservationsAreAllOrNothingAcrossItems) {
  Listing a = Active(Input("Chess set", 3000, 3, kBooks));
  Listing b = Active(Input("Chess clock", 4000, 1, kBooks));
  auto r = service_->Reserve("co_1", {{a.id, 2}, {b.id, 2}}, std::chrono::minutes(1));
  EXPECT_EQ(r.error().type, "insufficient-stock");
  EXPECT_EQ(service_->GetListing(nullptr, a.id)->quantity, 3) << "the first item was not held";
  auto ok = service_->Reserve("co_1", {{a.id, 1}, {b.id, 1}, {a.id, 1}}, std::chrono::minutes(1));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  ASSERT_EQ(ok->items.size(), 2u) << "duplicate lines are merged";
  EXPECT_EQ(service_->GetListing(nullptr, a.id)->quantity, 1);
  EXPECT_EQ(service_->GetListing(nullptr, b.id)->quantity, 0);
}

TEST_P(CatalogServiceTest, CommitSellsReleaseAndExpiryGiveStockBack) {
  Listing l = Active(Input("Vinyl record", 2500, 5));
  auto sold = service_->Reserve("co_a", {{l.id, 2}}, std::chrono::minutes(1)).value();
  auto released = service_->Reserve("co_b", {{l.id, 1}}, std::chrono::minutes(1)).value();
  auto expiring = service_->Reserve("co_c", {{l.id, 1}}, std::chrono::seconds(30)).value();
  EXPECT_EQ(service_->GetListing(&seller_, l.id)->quantity, 1);

  ASSERT_TRUE(service_->CommitReservation(sold.id).ok());
  ASSERT_TRUE(service_->CommitReservation(sold.id).ok()) << "committing twice is a no-op";
  EXPECT_EQ(service_->ReleaseReservation(sold.id).error().type, "reservation-not-held");
  ASSERT_TRUE(service_->ReleaseReservation(released.id).ok());
  EXPECT_EQ(service_->CommitReservation(released.id).error().type, "reservation-not-held");

  EXPECT_EQ(service_->ExpireReservations().value(), 0) << "nothing is due yet";
  clock_.Advance(std::chrono::seconds(31));
  EXPECT_EQ(service_->ExpireReservations().value(), 1);
  EXPECT_EQ(service_->CommitReservation(expiring.id).error().type, "reservation-not-held");

  auto after = service_->GetListing(&seller_, l.id).value();
  EXPECT_EQ(after.quantity, 3) << "5 - 2 sold";
  EXPECT_EQ(after.reserved, 0);
}

TEST_P(CatalogServiceTest, ReservingAnInactiveListingIsNotFound) {
  auto draft = service_->CreateListing(seller_, Input()).value();
  EXPECT_EQ(service_->Reserve("co", {{draft.id, 1}}, std::chrono::minutes(1)).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(service_->Reserve("co", {{"prd_nope", 1}}, std::chrono::minutes(1)).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(service_->Reserve("co", {{draft.id, 0}}, std::chrono::minutes(1)).error().code,
            ErrorCode::kInvalidArgument);
}

TEST_P(CatalogServiceTest, BrowsePagesThroughActiveListingsWithFiltersAndSorts) {
  for (int i = 0; i < 7; ++i) {
    Active(Input("Phone " + std::to_string(i), 1000 + 100 * (i % 3), i % 2, kPhones));
    clock_.Advance(std::chrono::milliseconds(5));
  }
  Active(Input("A novel", 900, 1, kBooks));
  ASSERT_TRUE(service_->CreateListing(seller_, Input("Draft phone")).ok());

  BrowseQuery q;
  q.category_ids = service_->CategoryWithDescendants(kElectronics).value();
  q.sort = Sort::kPriceAsc;
  q.limit = 3;
  std::vector<Listing> seen;
  for (int page = 0; page < 10; ++page) {
    auto p = service_->Browse(q).value();
    seen.insert(seen.end(), p.listings.begin(), p.listings.end());
    if (!p.next) break;
    q.after = p.next;
  }
  ASSERT_EQ(seen.size(), 7u) << "descendants included, drafts and other categories not";
  std::set<std::string> ids;
  for (size_t i = 0; i < seen.size(); ++i) {
    ids.insert(seen[i].id);
    if (i > 0) {
      EXPECT_LE(seen[i - 1].price.amount, seen[i].price.amount);
    }
  }
  EXPECT_EQ(ids.size(), 7u) << "no duplicates across pages";

  BrowseQuery stock;
  stock.in_stock = true;
  stock.min_price = 1000;
  stock.max_price = 1100;
  const ListingPage in_stock = service_->Browse(stock).value();
  ASSERT_FALSE(in_stock.listings.empty());
  for (const auto& l : in_stock.listings) {
    EXPECT_GT(l.quantity, 0);
    EXPECT_GE(l.price.amount, 1000);
    EXPECT_LE(l.price.amount, 1100);
  }

  BrowseQuery newest;
  auto first = service_->Browse(newest)->listings;
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first.front().title, "A novel");

  BrowseQuery mine;
  mine.seller_scope = seller_.user_id;
  mine.status = ListingStatus::kDraft;
  auto drafts = service_->Browse(mine)->listings;
  ASSERT_EQ(drafts.size(), 1u);
  EXPECT_EQ(drafts[0].title, "Draft phone");
}

TEST_P(CatalogServiceTest, CategoryTreeRulesHold) {
  auto tree = service_->CategoryTree().value();
  ASSERT_GE(tree.size(), 8u) << "a default tree exists";
  CategoryInput in;
  in.name = "Smartwatches";
  in.parent_id = kElectronics;
  auto c = service_->CreateCategory(in);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->slug, "smartwatches");
  EXPECT_EQ(service_->CreateCategory(in).error().type, "slug-taken");

  CategoryInput cycle;
  cycle.parent_id = c->id;
  EXPECT_EQ(service_->UpdateCategory(kElectronics, cycle).error().type, "category-cycle");
  EXPECT_EQ(service_->DeleteCategory(kElectronics).error().type, "category-in-use");
  Active(Input("Watch", 9900, 1, c->id));
  EXPECT_EQ(service_->DeleteCategory(c->id).error().type, "category-in-use") << "it has a listing";

  CategoryInput empty;
  empty.name = "Empty";
  auto e = service_->CreateCategory(empty).value();
  EXPECT_TRUE(e.parent_id.empty());
  EXPECT_TRUE(service_->DeleteCategory(e.id).ok());
  EXPECT_EQ(service_->GetCategory(e.id).error().code, ErrorCode::kNotFound);
}

TEST_P(CatalogServiceTest, ACommitAfterTheDeadlineExpiresTheReservationInstead) {
  Listing l = Active(Input("Festival pass", 9900, 2));
  auto r = service_->Reserve("co", {{l.id, 2}}, std::chrono::seconds(10)).value();
  clock_.Advance(std::chrono::seconds(11));  // the sweeper has not run
  auto commit = service_->CommitReservation(r.id);
  EXPECT_EQ(commit.error().type, "reservation-not-held");
  auto after = service_->GetListing(&seller_, l.id).value();
  EXPECT_EQ(after.quantity, 2) << "the stock came back";
  EXPECT_EQ(after.reserved, 0);
  auto e = boost::json::parse(Outbox().back().payload).as_object();
  EXPECT_EQ(e.at("reason").as_string(), "reservation_expired");
}

// Opposite moves at once (A under B, B under A) must never leave a cycle.
TEST_P(CatalogServiceTest, ConcurrentOppositeMovesNeverMakeACycle) {
  for (int round = 0; round < 5; ++round) {
    CategoryInput a_in, b_in;
    a_in.name = "A" + std::to_string(round);
    b_in.name = "B" + std::to_string(round);
    Category a = service_->CreateCategory(a_in).value();
    Category b = service_->CreateCategory(b_in).value();
    std::atomic<int> moved{0};
    auto move = [&](const Category& child, const Category& parent) {
      CategoryInput in;
      in.parent_id = parent.id;
      auto r = service_->UpdateCategory(child.id, in);
      if (r.ok()) {
        ++moved;
      } else {
        EXPECT_EQ(r.error().type, "category-cycle") << r.error().message;
      }
    };
    std::thread t1(move, a, b), t2(move, b, a);
    t1.join();
    t2.join();
    EXPECT_EQ(moved.load(), 1) << "exactly one move wins";
    // Walking up from either ends at a root.
    auto d = service_->GetCategory(a.id).value();
    EXPECT_LE(d.path.size(), 2u);
    auto tree = service_->CategoryTree();
    ASSERT_TRUE(tree.ok());
  }
}

// Deleting a category while listings are created in it: every request gets
// an answer from the domain (created, or a clear refusal), never an
// internal error, and no listing points at a missing category.
TEST_P(CatalogServiceTest, DeletingACategoryRacesCleanlyWithNewListings) {
  CategoryInput in;
  in.name = "Short-lived";
  Category c = service_->CreateCategory(in).value();
  std::atomic<bool> go{false};
  std::vector<std::string> created;
  std::mutex mu;
  std::thread writer([&] {
    while (!go) std::this_thread::yield();
    for (int i = 0; i < 20; ++i) {
      auto l = service_->CreateListing(seller_, Input("Item " + std::to_string(i), 100, 1, c.id));
      if (l.ok()) {
        std::lock_guard lock(mu);
        created.push_back(l->id);
      } else {
        EXPECT_EQ(l.error().code, ErrorCode::kInvalidArgument) << l.error().message;
      }
    }
  });
  go = true;
  Status deleted = service_->DeleteCategory(c.id);
  writer.join();
  if (deleted.ok()) {
    EXPECT_TRUE(created.empty()) << "a deleted category has no listings";
  } else {
    EXPECT_EQ(deleted.error().type, "category-in-use") << deleted.error().message;
  }
}

INSTANTIATE_TEST_SUITE_P(Drivers, CatalogServiceTest, db::testing::AllDialects(), db::testing::DialectParamName);

}  // namespace
}  // namespace agora::catalog
