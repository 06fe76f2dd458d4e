// The JSON shape of listings and categories, shared by the API and the
// event payloads (events.h), so the search read model sees what clients see.
#pragma once

#include <boost/json/object.hpp>

#include "services/catalog/domain/types.h"

namespace agora::catalog {

// The public listing. `owner_view` adds what only its seller and admins see
// ("reserved").
boost::json::object ListingToJson(const Listing& l, bool owner_view);
// The payload of listing.* events: the owner view plus the timestamps in
// milliseconds ("created_at_ms", "published_at_ms") for sorting.
boost::json::object ListingEventPayload(const Listing& l);
// The payload of inventory.changed.
boost::json::object InventoryEventPayload(const Listing& l, std::string_view reason);
boost::json::object CategoryToJson(const Category& c);

}  // namespace agora::catalog
