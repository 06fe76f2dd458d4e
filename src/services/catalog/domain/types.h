// The catalog's domain values: listings, categories and stock reservations.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace agora::catalog {

// Limits of listings and categories, checked on every write.
struct Limits {
  static constexpr size_t kTitleMin = 3, kTitleMax = 140;
  static constexpr size_t kDescriptionMax = 5000;
  static constexpr int64_t kPriceMax = 100'000'000'00;  // 100 million in major units
  static constexpr int64_t kQuantityMax = 1'000'000;
  static constexpr size_t kAttributesMax = 30, kAttributeKeyMax = 40, kAttributeValueMax = 200;
  static constexpr size_t kImagesMax = 10, kImageUrlMax = 2048;
  static constexpr size_t kShippingMax = 5;
  static constexpr size_t kCategoryNameMax = 80, kCategoryDepthMax = 6;
  static constexpr int kListLimitMax = 100, kListLimitDefault = 20;
};

// draft -> active -> archived; active <-> draft (unpublish). archived is final.
enum class ListingStatus { kDraft, kActive, kArchived };
const char* StatusName(ListingStatus s);
std::optional<ListingStatus> ParseStatus(std::string_view s);

// The conditions a listing may state, best first.
inline constexpr const char* kConditions[] = {"new", "like_new", "good", "fair", "poor"};
bool IsCondition(std::string_view s);

struct Money {
  int64_t amount = 0;    // minor units (cents)
  std::string currency;  // ISO 4217, upper case
  friend bool operator==(const Money&, const Money&) = default;
};

struct ShippingOption {
  std::string method;  // "standard", "express", "pickup" ...
  Money price;
  int min_days = 0;
  int max_days = 0;
  friend bool operator==(const ShippingOption&, const ShippingOption&) = default;
};

// One step of a category's path from the root.
struct CategoryRef {
  std::string id;
  std::string name;
  friend bool operator==(const CategoryRef&, const CategoryRef&) = default;
};

struct Listing {
  std::string id;  // "prd_..."
  std::string seller_id;
  std::string title;
  std::string description;
  Money price;
  int64_t quantity = 0;  // available now: stock minus held reservations
  int64_t reserved = 0;  // held by live reservations
  std::string category_id;
  std::string condition;
  std::vector<std::pair<std::string, std::string>> attributes;  // in the order given
  std::vector<std::string> images;                               // https URLs
  std::vector<ShippingOption> shipping;
  ListingStatus status = ListingStatus::kDraft;
  // Bumped by every change, stock included; the ETag is "v<version>".
  int64_t version = 1;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::optional<int64_t> published_at_ms;  // first publication
  // Filled on reads: the category's path from the root, ending with itself.
  std::vector<CategoryRef> category_path;
};

struct Category {
  std::string id;  // "cat_..."
  std::string parent_id;  // "" for a root
  std::string name;
  std::string slug;  // unique, [a-z0-9-]
  int64_t position = 0;  // order among siblings
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

// A category create (name required) or patch (absent = unchanged).
struct CategoryInput {
  std::optional<std::string> name;
  std::optional<std::string> slug;
  // Set: move under this parent ("" = make it a root). Absent: unchanged.
  std::optional<std::string> parent_id;
  std::optional<int64_t> position;
};

enum class ReservationState { kHeld, kCommitted, kReleased, kExpired };
const char* ReservationStateName(ReservationState s);

struct ReservationItem {
  std::string listing_id;
  int64_t quantity = 0;
};

struct Reservation {
  std::string id;  // "rsv_..."
  std::string owner;  // who holds it (a checkout id); free text for the caller
  std::vector<ReservationItem> items;
  ReservationState state = ReservationState::kHeld;
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;
};

}  // namespace agora::catalog
