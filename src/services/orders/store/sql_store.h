// The orders service's tables on the core db facade (SQLite or PostgreSQL).
// Today: cart lines.
#pragma once

#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "core/db/db.h"
#include "services/orders/domain/cart.h"

namespace agora::orders {

// Applied with db.Migrate("orders", OrdersMigrations()).
std::span<const db::Migration> OrdersMigrations();

class CartStore {
 public:
  explicit CartStore(db::Database& db) : db_(db) {}

  Result<std::vector<CartLine>> Lines(std::string_view buyer_id);
  // kNotFound type "cart-item-not-found" unless the line is the buyer's.
  Result<CartLine> Line(std::string_view buyer_id, std::string_view line_id);

  struct Added {
    CartLine line;
    bool created = false;
  };
  // Adds `quantity` of `listing_id` to the buyer's cart, in one write
  // transaction: to the existing line (its new total checked with `check`
  // and against kLineQuantityMax), or as a new line (kConflict "cart-full"
  // beyond kLinesMax lines).
  Result<Added> Add(std::string_view buyer_id, std::string_view listing_id, int64_t quantity, int64_t now_ms,
                    const std::function<Status(int64_t new_quantity)>& check);
  Result<CartLine> SetQuantity(std::string_view buyer_id, std::string_view line_id, int64_t quantity, int64_t now_ms);
  Status Remove(std::string_view buyer_id, std::string_view line_id);

 private:
  db::Database& db_;
};

}  // namespace agora::orders
