// What the catalog domain needs from storage. Every method is atomic; the SQL
// implementation (store/sql_store.h) runs on SQLite and PostgreSQL. Events
// passed in are appended to the outbox in the same transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/events/events.h"
#include "core/result.h"
#include "services/catalog/domain/types.h"

namespace agora::catalog {

enum class Sort { kNewest, kPriceAsc, kPriceDesc };
const char* SortName(Sort s);
std::optional<Sort> ParseSort(std::string_view s);

// A page position: the last row's sort key and id.
struct PageKey {
  int64_t key = 0;
  std::string id;
};

struct BrowseQuery {
  // Public browse: active listings only. Seller scope: that seller's
  // listings of every status (or `status`), newest created first.
  std::string seller_scope;  // non-empty: "my listings" of this seller
  std::optional<ListingStatus> status;  // seller scope only
  std::vector<std::string> category_ids;  // a category and its descendants; empty = any
  std::optional<int64_t> min_price, max_price;
  std::string currency;
  std::string seller_id;
  std::vector<std::string> conditions;
  std::optional<bool> in_stock;
  Sort sort = Sort::kNewest;
  int limit = 20;
  std::optional<PageKey> after;
};

struct ListingPage {
  std::vector<Listing> listings;
  std::optional<PageKey> next;  // set when there may be more
};

class CatalogStore {
 public:
  virtual ~CatalogStore() = default;

  virtual Result<std::vector<Category>> LoadCategories() = 0;
  // kConflict type "slug-taken" when the slug is used.
  virtual Status InsertCategory(const Category& c, const events::Event& e) = 0;
  // Applies `patch` to the current row inside a write transaction. A move
  // (parent_id set) is checked there against the committed tree: kConflict
  // type "category-cycle" when the new parent is the category or below it,
  // kNotFound type "category-not-found" when the parent does not exist.
  // Returns the saved category; make_event builds the appended event.
  virtual Result<Category> UpdateCategory(std::string_view id, const CategoryInput& patch, int64_t now_ms,
                                          const std::function<events::Event(const Category&)>& make_event) = 0;
  // kFailedPrecondition type "category-in-use" when it has children or listings.
  virtual Status DeleteCategory(std::string_view id, const events::Event& e) = 0;

  virtual Status InsertListings(const std::vector<Listing>& listings, const std::vector<events::Event>& events) = 0;
  // kNotFound type "listing-not-found".
  virtual Result<Listing> FindListing(std::string_view id) = 0;
  // Runs `mutate` on the current row inside a write transaction (the row is
  // locked); when it returns Ok the listing is saved with version + 1 and
  // updated_at = now_ms, and the event `make_event` builds from the saved
  // listing is appended. An error from `mutate` is returned, nothing written.
  virtual Result<Listing> MutateListing(std::string_view id, int64_t now_ms,
                                        const std::function<Status(Listing&)>& mutate,
                                        const std::function<events::Event(const Listing&)>& make_event) = 0;
  virtual Result<ListingPage> Browse(const BrowseQuery& q) = 0;
  virtual Result<std::vector<Listing>> ListingsAfter(std::string_view after_id, int limit) = 0;

  // Holds every item of `r` (merged per listing) or none: each listing must
  // be active (kNotFound "listing-not-found" otherwise) with enough available
  // stock (kFailedPrecondition "insufficient-stock" otherwise). Moves the
  // quantity from available to reserved, bumps each listing's version, and
  // appends make_event(listing) per listing.
  virtual Status InsertReservation(const Reservation& r, int64_t now_ms,
                                   const std::function<events::Event(const Listing&)>& make_event) = 0;
  // Moves a held reservation to `to` (committed: reserved stock is sold;
  // released or expired: it returns to available). A commit that comes
  // after expires_at_ms expires the reservation instead. Returns the
  // reservation as it is after the call; one already in a final state is
  // returned unchanged (the caller decides whether that is an error).
  // make_event(listing, state reached) builds each listing's event.
  virtual Result<Reservation> FinishReservation(
      std::string_view id, ReservationState to, int64_t now_ms,
      const std::function<events::Event(const Listing&, ReservationState)>& make_event) = 0;
  // Ids of held reservations that expired before now_ms, oldest first.
  virtual Result<std::vector<std::string>> ExpiredReservations(int64_t now_ms, int limit) = 0;

  virtual Result<std::vector<events::Event>> EventsAfter(int64_t after_seq, int limit) = 0;
  virtual Result<int64_t> LastEventSeq() = 0;
};

}  // namespace agora::catalog
