#include "services/orders/store/sql_store.h"

#include <fmt/format.h>

#include "core/id.h"

namespace agora::orders {
namespace {

constexpr db::Migration kMigrations[] = {
    {1, "cart_items", R"sql(
CREATE TABLE cart_items (
  id TEXT PRIMARY KEY,
  buyer_id TEXT NOT NULL,
  listing_id TEXT NOT NULL,
  quantity BIGINT NOT NULL CHECK (quantity > 0),
  added_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  UNIQUE (buyer_id, listing_id)
);
CREATE INDEX cart_items_buyer ON cart_items (buyer_id, added_at_ms);
)sql"},
};

constexpr const char* kCols = "id, buyer_id, listing_id, quantity, added_at_ms, updated_at_ms";

CartLine LineFromRow(const db::Row& r) {
  return CartLine{r.Text(0), r.Text(1), r.Text(2), r.Int(3), r.Int(4), r.Int(5)};
}

Error LineNotFound() { return Error::NotFound("No such item in your cart").WithType("cart-item-not-found"); }

Error LineTooBig() {
  return Error::Validation(
      {{"quantity", fmt::format("a cart line holds at most {}", CartLimits::kLineQuantityMax)}});
}

const char* ForUpdate(db::Tx& tx) { return tx.dialect() == db::Dialect::kPostgres ? " FOR UPDATE" : ""; }

}  // namespace

std::span<const db::Migration> OrdersMigrations() { return kMigrations; }

Result<std::vector<CartLine>> CartStore::Lines(std::string_view buyer_id) {
  AGORA_ASSIGN_OR_RETURN(
      db::Rows rows, db_.Exec("orders.cart_lines",
                              fmt::format("SELECT {} FROM cart_items WHERE buyer_id = $1 ORDER BY added_at_ms, id", kCols),
                              {std::string(buyer_id)}));
  std::vector<CartLine> out;
  for (const auto& r : rows) out.push_back(LineFromRow(r));
  return out;
}

Result<CartLine> CartStore::Line(std::string_view buyer_id, std::string_view line_id) {
  AGORA_ASSIGN_OR_RETURN(
      db::Rows rows, db_.Exec("orders.cart_line",
                              fmt::format("SELECT {} FROM cart_items WHERE id = $1 AND buyer_id = $2", kCols),
                              {std::string(line_id), std::string(buyer_id)}));
  if (rows.empty()) return LineNotFound();
  return LineFromRow(rows[0]);
}

Result<CartStore::Added> CartStore::Add(std::string_view buyer_id, std::string_view listing_id, int64_t quantity,
                                        int64_t now_ms, const std::function<Status(int64_t)>& check) {
  return db_.Transact("orders.cart_add", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<Added> {
    AGORA_ASSIGN_OR_RETURN(
        db::Rows existing,
        tx.Exec("orders.cart_line_by_listing",
                fmt::format("SELECT {} FROM cart_items WHERE buyer_id = $1 AND listing_id = $2{}", kCols, ForUpdate(tx)),
                {std::string(buyer_id), std::string(listing_id)}));
    if (!existing.empty()) {
      CartLine line = LineFromRow(existing[0]);
      const int64_t total = line.quantity + quantity;
      if (total > CartLimits::kLineQuantityMax) return LineTooBig();
      AGORA_RETURN_IF_ERROR(check(total));
      line.quantity = total;
      line.updated_at_ms = now_ms;
      AGORA_RETURN_IF_ERROR(tx.Exec("orders.cart_set_quantity",
                                    "UPDATE cart_items SET quantity = $2, updated_at_ms = $3 WHERE id = $1",
                                    {line.id, line.quantity, now_ms}));
      return Added{line, false};
    }
    AGORA_RETURN_IF_ERROR(check(quantity));
    AGORA_ASSIGN_OR_RETURN(db::Rows count, tx.Exec("orders.cart_count",
                                                   "SELECT COUNT(*) FROM cart_items WHERE buyer_id = $1",
                                                   {std::string(buyer_id)}));
    if (!count.empty() && count[0].Int(0) >= static_cast<int64_t>(CartLimits::kLinesMax)) {
      return Error::Conflict(fmt::format("A cart holds at most {} different items", CartLimits::kLinesMax))
          .WithType("cart-full");
    }
    CartLine line{NewId("cit_"), std::string(buyer_id), std::string(listing_id), quantity, now_ms, now_ms};
    auto inserted = tx.Exec("orders.cart_insert",
                            fmt::format("INSERT INTO cart_items ({}) VALUES ($1, $2, $3, $4, $5, $6)", kCols),
                            {line.id, line.buyer_id, line.listing_id, line.quantity, now_ms, now_ms});
    if (!inserted.ok() && inserted.error().code == ErrorCode::kConflict) {
      // The same product added at the same moment by another request: the
      // caller runs Add again, which then finds the line.
      return Error::Unavailable("concurrent add of the same product").WithType("cart-line-raced");
    }
    AGORA_RETURN_IF_ERROR(std::move(inserted));
    return Added{line, true};
  });
}

Result<CartLine> CartStore::SetQuantity(std::string_view buyer_id, std::string_view line_id, int64_t quantity,
                                        int64_t now_ms) {
  AGORA_ASSIGN_OR_RETURN(db::Rows r, db_.Exec("orders.cart_update_quantity",
                                              "UPDATE cart_items SET quantity = $3, updated_at_ms = $4 "
                                              "WHERE id = $1 AND buyer_id = $2",
                                              {std::string(line_id), std::string(buyer_id), quantity, now_ms}));
  if (r.affected != 1) return LineNotFound();
  return Line(buyer_id, line_id);
}

Status CartStore::Remove(std::string_view buyer_id, std::string_view line_id) {
  AGORA_ASSIGN_OR_RETURN(db::Rows r, db_.Exec("orders.cart_remove",
                                              "DELETE FROM cart_items WHERE id = $1 AND buyer_id = $2",
                                              {std::string(line_id), std::string(buyer_id)}));
  if (r.affected != 1) return LineNotFound();
  return Ok();
}

}  // namespace agora::orders
