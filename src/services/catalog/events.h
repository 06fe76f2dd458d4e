// Events the catalog publishes (source "catalog"), all through its outbox in
// the transaction that made the change.
//
// listing.created, listing.updated, listing.archived: the payload is the
//   listing as catalog::ListingToJson(listing, /*internal=*/true) writes it:
//   the public fields plus "status", "version", "seller_id", "quantity",
//   "reserved" and "category_path" ([{"id","name"}, root first]).
//   listing.updated covers publish and unpublish too ("status" says which).
// inventory.changed: {"listing_id", "quantity", "reserved", "version",
//   "status", "reason"}: stock moved (seller adjustment, reservation held,
//   released or expired); "version" orders it against the listing events.
// category.created, category.updated, category.deleted: {"id", "parent_id",
//   "name", "slug"}.
//
// A consumer keeps the highest "version" it applied per listing and ignores
// older ones, so redelivery and reordering are harmless.
#pragma once

namespace agora::catalog::event_types {

inline constexpr const char* kSource = "catalog";
inline constexpr const char* kListingCreated = "listing.created";
inline constexpr const char* kListingUpdated = "listing.updated";
inline constexpr const char* kListingArchived = "listing.archived";
inline constexpr const char* kInventoryChanged = "inventory.changed";
inline constexpr const char* kCategoryCreated = "category.created";
inline constexpr const char* kCategoryUpdated = "category.updated";
inline constexpr const char* kCategoryDeleted = "category.deleted";

}  // namespace agora::catalog::event_types
