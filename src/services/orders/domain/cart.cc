#include "services/orders/domain/cart.h"

#include <algorithm>

#include <fmt/format.h>

namespace agora::orders {

const char* LineStatusName(LineStatus s) {
  switch (s) {
    case LineStatus::kOk: return "ok";
    case LineStatus::kUnavailable: return "unavailable";
    case LineStatus::kInsufficientStock: return "insufficient_stock";
  }
  return "ok";
}

CartView PriceCart(const std::vector<CartLine>& lines, const std::map<std::string, catalog::Listing>& listings) {
  CartView view;
  for (const auto& line : lines) {
    PricedLine p{line, LineStatus::kOk, std::nullopt, std::nullopt};
    view.item_count += line.quantity;
    view.updated_at_ms = std::max(view.updated_at_ms.value_or(0), line.updated_at_ms);
    auto it = listings.find(line.listing_id);
    if (it == listings.end()) {
      p.status = LineStatus::kUnavailable;
    } else {
      const catalog::Listing& l = it->second;
      p.listing = l;
      p.subtotal = catalog::Money{l.price.amount * line.quantity, l.price.currency};
      if (l.quantity < line.quantity) p.status = LineStatus::kInsufficientStock;
      view.totals[l.price.currency] += p.subtotal->amount;
    }
    view.lines.push_back(std::move(p));
  }
  return view;
}

Status CheckLine(const catalog::Listing& listing, std::string_view buyer_id, int64_t quantity) {
  if (listing.seller_id == buyer_id) {
    return Error::Conflict("You cannot buy your own listing").WithType("own-listing");
  }
  if (quantity > listing.quantity) {
    return Error::FailedPrecondition(fmt::format("Only {} available", listing.quantity)).WithType("insufficient-stock");
  }
  return Ok();
}

}  // namespace agora::orders
