#include "services/orders/domain/cart_service.h"

namespace agora::orders {

Result<CartView> CartService::View(std::string_view buyer_id) {
  AGORA_ASSIGN_OR_RETURN(std::vector<CartLine> lines, store_.Lines(buyer_id));
  std::map<std::string, catalog::Listing> listings;
  for (const auto& line : lines) {
    auto l = catalog_.GetActiveListing(line.listing_id);
    if (l.ok()) {
      listings.emplace(line.listing_id, std::move(*l));
    } else if (l.error().code != ErrorCode::kNotFound) {
      return std::move(l).error();
    }
  }
  return PriceCart(lines, listings);
}

Result<CartStore::Added> CartService::Add(std::string_view buyer_id, std::string_view listing_id, int64_t quantity) {
  AGORA_ASSIGN_OR_RETURN(catalog::Listing listing, catalog_.GetActiveListing(listing_id));
  auto check = [&](int64_t total) { return CheckLine(listing, buyer_id, total); };
  for (int attempt = 0;; ++attempt) {
    auto added = store_.Add(buyer_id, listing_id, quantity, clock_.NowMillis(), check);
    if (added.ok() || added.error().type != "cart-line-raced" || attempt == 2) return added;
  }
}

Result<CartLine> CartService::SetQuantity(std::string_view buyer_id, std::string_view line_id, int64_t quantity) {
  AGORA_ASSIGN_OR_RETURN(CartLine line, store_.Line(buyer_id, line_id));
  auto listing = catalog_.GetActiveListing(line.listing_id);
  if (!listing.ok()) return std::move(listing).error();
  AGORA_RETURN_IF_ERROR(CheckLine(*listing, buyer_id, quantity));
  return store_.SetQuantity(buyer_id, line_id, quantity, clock_.NowMillis());
}

Status CartService::Remove(std::string_view buyer_id, std::string_view line_id) {
  return store_.Remove(buyer_id, line_id);
}

}  // namespace agora::orders
