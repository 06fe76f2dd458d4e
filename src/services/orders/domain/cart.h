// A buyer's cart: lines of (listing, quantity). Prices are never stored in
// the cart; every read prices the lines at the catalog's current figures, so
// a cart always shows what checkout would charge. Pure; no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "services/catalog/domain/types.h"

namespace agora::orders {

struct CartLimits {
  static constexpr int64_t kLineQuantityMax = 100;
  static constexpr size_t kLinesMax = 50;
};

struct CartLine {
  std::string id;  // "cit_..."
  std::string buyer_id;
  std::string listing_id;
  int64_t quantity = 0;
  int64_t added_at_ms = 0;
  int64_t updated_at_ms = 0;
};

enum class LineStatus { kOk, kUnavailable, kInsufficientStock };
const char* LineStatusName(LineStatus s);

struct PricedLine {
  CartLine line;
  LineStatus status = LineStatus::kOk;
  std::optional<catalog::Listing> listing;  // absent when unavailable
  std::optional<catalog::Money> subtotal;   // price x quantity, when available
};

struct CartView {
  std::vector<PricedLine> lines;
  std::map<std::string, int64_t> totals;  // currency -> amount, available lines only
  int64_t item_count = 0;
  std::optional<int64_t> updated_at_ms;
};

// Prices `lines` with `listings` (the active ones by id; a missing id means
// the listing is no longer for sale).
CartView PriceCart(const std::vector<CartLine>& lines, const std::map<std::string, catalog::Listing>& listings);

// Whether a line of `quantity` may hold `listing` for `buyer_id`: kConflict
// "own-listing" for the seller's own listing, kFailedPrecondition
// "insufficient-stock" above what is available now.
Status CheckLine(const catalog::Listing& listing, std::string_view buyer_id, int64_t quantity);

}  // namespace agora::orders
