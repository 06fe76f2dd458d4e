// The catalog's rules: who may change a listing, which transitions are
// allowed, what a valid listing is, and stock that never goes negative.
// No I/O here; the store (domain/store.h) does the atomic parts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "services/catalog/client.h"
#include "services/catalog/domain/store.h"
#include "services/catalog/domain/types.h"

namespace agora::catalog {


// A create (every required field set) or a patch (absent = unchanged).
struct ListingInput {
  std::optional<std::string> title;
  std::optional<std::string> description;
  std::optional<Money> price;
  std::optional<int64_t> quantity;
  std::optional<std::string> category_id;
  std::optional<std::string> condition;
  std::optional<std::vector<std::pair<std::string, std::string>>> attributes;
  std::optional<std::vector<std::string>> images;
  std::optional<std::vector<ShippingOption>> shipping;
};

// Who is acting. Sellers act on their own listings; admins on any.
struct Actor {
  std::string user_id;
  bool admin = false;
};

// Checks `in` against Limits and the domain rules that need no store
// (currency, condition, URLs); every problem is returned with its field.
std::vector<FieldError> ValidateListingInput(const ListingInput& in, bool create);
bool IsIsoCurrency(std::string_view code);

// A node of the category tree, children in position then name order.
struct CategoryNode {
  Category category;
  std::vector<CategoryNode> children;
};

// One category with its path from the root (ending with itself) and its
// direct children.
struct CategoryDetail {
  Category category;
  std::vector<CategoryRef> path;
  std::vector<Category> children;
};

struct CatalogOptions {
  // How long a reservation holds stock when the caller gives no TTL.
  std::chrono::milliseconds default_reservation_ttl = std::chrono::minutes(15);
  std::chrono::milliseconds max_reservation_ttl = std::chrono::hours(2);
  // How long the category tree read from the store is reused. Writes through
  // this process forget it at once; other processes' writes show after this.
  int64_t category_cache_ms = 5000;
};

class CatalogService final : public CatalogClient {
 public:
  CatalogService(CatalogOptions options, CatalogStore& store, const Clock& clock);

  // Listings. Another seller's listing is kNotFound, never kPermissionDenied.
  Result<Listing> CreateListing(const Actor& actor, const ListingInput& in);
  // An active listing for anyone; a draft or archived one only for its
  // seller or an admin (`actor` may be null for an anonymous caller).
  Result<Listing> GetListing(const Actor* actor, std::string_view id);
  // `if_match`: the version the caller read (from the ETag); kFailedPrecondition
  // type "stale-version" when the listing has moved on since.
  Result<Listing> UpdateListing(const Actor& actor, std::string_view id, std::optional<int64_t> if_match, const ListingInput& in);
  Result<Listing> PublishListing(const Actor& actor, std::string_view id, std::optional<int64_t> if_match);
  Result<Listing> UnpublishListing(const Actor& actor, std::string_view id, std::optional<int64_t> if_match);
  Result<Listing> ArchiveListing(const Actor& actor, std::string_view id, std::optional<int64_t> if_match);
  // Exactly one of `delta` (add or remove) and `set` (the new available
  // quantity). kFailedPrecondition type "insufficient-stock" when the result
  // would be negative.
  Result<Listing> AdjustInventory(const Actor& actor, std::string_view id, std::optional<int64_t> delta,
                                  std::optional<int64_t> set, std::optional<int64_t> if_match, std::string_view reason);

  // Public browse (active listings only) and a seller's own listings.
  Result<ListingPage> Browse(const BrowseQuery& q);

  // Categories (writes are for admins; the route checks the role).
  Result<std::vector<CategoryNode>> CategoryTree();
  Result<CategoryDetail> GetCategory(std::string_view id);
  // `id` and every category below it (for "category and its descendants"
  // filters); kNotFound type "category-not-found" if `id` does not exist.
  Result<std::vector<std::string>> CategoryWithDescendants(std::string_view id);
  Result<Category> CreateCategory(const CategoryInput& in);
  Result<Category> UpdateCategory(std::string_view id, const CategoryInput& in);
  Status DeleteCategory(std::string_view id);

  // Releases held reservations whose time is up; returns how many.
  Result<int> ExpireReservations();

  // Inserts many listings for one seller at once, already active (seed-demo).
  Result<int> CreateListingsBulk(std::string_view seller_id, const std::vector<ListingInput>& inputs,
                                 bool publish);

  // CatalogClient.
  Result<Listing> GetActiveListing(std::string_view id) override;
  Result<Reservation> Reserve(std::string_view owner, const std::vector<ReservationItem>& items,
                              std::chrono::milliseconds ttl) override;
  Result<Reservation> CommitReservation(std::string_view reservation_id) override;
  Result<Reservation> ReleaseReservation(std::string_view reservation_id) override;
  Result<std::vector<Category>> Categories() override;
  Result<std::vector<Listing>> ListingsAfter(std::string_view after_id, int limit) override;
  Result<std::vector<events::Event>> EventsAfter(int64_t after_seq, int limit) override;
  Result<int64_t> LastEventSeq() override;

 private:
  struct CategoryIndex {
    std::unordered_map<std::string, Category> by_id;
    std::unordered_map<std::string, std::vector<std::string>> children;  // "" = roots; ordered
    std::vector<CategoryRef> PathOf(std::string_view id) const;
    std::vector<std::string> SelfAndDescendants(std::string_view id) const;
  };
  Result<std::shared_ptr<const CategoryIndex>> Categories_();
  void ForgetCategories();
  Status FillPath(Listing& l);
  Status CheckCategoryInput(const CategoryInput& in, bool create, const CategoryIndex& cats, std::string_view self_id);
  static void Apply(Listing& l, const ListingInput& in);
  Status ValidateInput(const ListingInput& in, bool create);
  // Read-modify-write of one listing by `actor` (its seller or an admin),
  // appending a listing event of `event_type`.
  Result<Listing> Mutate(const Actor& actor, std::string_view id, const char* event_type,
                         const std::function<Status(Listing&)>& change);
  Result<Listing> WithPath(Result<Listing> l);
  Result<Reservation> Finish(std::string_view id, ReservationState to);

  CatalogOptions options_;
  CatalogStore& store_;
  const Clock& clock_;
  std::mutex categories_mu_;
  std::shared_ptr<const CategoryIndex> categories_;  // GUARDED_BY(categories_mu_)
  int64_t categories_loaded_ms_ = 0;                  // GUARDED_BY(categories_mu_)
  uint64_t categories_generation_ = 0;                // GUARDED_BY(categories_mu_); bumped by writes
};

}  // namespace agora::catalog
