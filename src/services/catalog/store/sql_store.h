// CatalogStore on the core db facade (SQLite or PostgreSQL).
#pragma once

#include <functional>
#include <mutex>
#include <span>
#include <unordered_map>

#include "core/db/db.h"
#include "services/catalog/domain/store.h"

namespace agora::catalog {

// The catalog schema (with a default category tree), applied with
// db.Migrate("catalog", CatalogMigrations()).
std::span<const db::Migration> CatalogMigrations();

class SqlCatalogStore final : public CatalogStore {
 public:
  // `cache_listings`: keep listings read by id in memory, forgotten on every
  // write through this store. Coherent only when this process is the only
  // one changing listings, as with the embedded SQLite file (other processes
  // may add listings: a new id is never cached stale).
  explicit SqlCatalogStore(db::Database& db, bool cache_listings = false)
      : db_(db), cache_listings_(cache_listings) {}

  Result<std::vector<Category>> LoadCategories() override;
  Status InsertCategory(const Category& c, const events::Event& e) override;
  Result<Category> UpdateCategory(std::string_view id, const CategoryInput& patch, int64_t now_ms,
                                  const std::function<events::Event(const Category&)>& make_event) override;
  Status DeleteCategory(std::string_view id, const events::Event& e) override;
  Status InsertListings(const std::vector<Listing>& listings, const std::vector<events::Event>& events) override;
  Result<Listing> FindListing(std::string_view id) override;
  Result<Listing> MutateListing(std::string_view id, int64_t now_ms, const std::function<Status(Listing&)>& mutate,
                                const std::function<events::Event(const Listing&)>& make_event) override;
  Result<ListingPage> Browse(const BrowseQuery& q) override;
  Result<std::vector<Listing>> ListingsAfter(std::string_view after_id, int limit) override;
  Status InsertReservation(const Reservation& r, int64_t now_ms,
                           const std::function<events::Event(const Listing&)>& make_event) override;
  Result<Reservation> FinishReservation(
      std::string_view id, ReservationState to, int64_t now_ms,
      const std::function<events::Event(const Listing&, ReservationState)>& make_event) override;
  Result<std::vector<std::string>> ExpiredReservations(int64_t now_ms, int limit) override;
  Result<std::vector<events::Event>> EventsAfter(int64_t after_seq, int limit) override;
  Result<int64_t> LastEventSeq() override;

  // Called after a commit that appended events, to wake the outbox relay.
  void SetOnEventsCommitted(std::function<void()> f) { on_events_ = std::move(f); }

 private:
  void Committed(const std::vector<std::string>& changed_ids);

  db::Database& db_;
  std::function<void()> on_events_;

  // The listing cache; the generation keeps a row read before a write from
  // being cached after it (as in the identity store).
  static constexpr size_t kCacheCapacity = 20000;
  const bool cache_listings_;
  std::mutex cache_mu_;
  std::unordered_map<std::string, Listing> cache_;  // GUARDED_BY(cache_mu_)
  uint64_t generation_ = 0;                          // GUARDED_BY(cache_mu_)
};

}  // namespace agora::catalog
