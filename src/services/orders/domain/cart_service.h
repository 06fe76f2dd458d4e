// The cart rules: what may be added, in what quantity, priced how. Reads
// listings through the catalog's client interface only.
#pragma once

#include <string_view>

#include "core/clock.h"
#include "services/catalog/client.h"
#include "services/orders/domain/cart.h"
#include "services/orders/store/sql_store.h"

namespace agora::orders {

class CartService {
 public:
  CartService(CartStore& store, catalog::CatalogClient& catalog, const Clock& clock)
      : store_(store), catalog_(catalog), clock_(clock) {}

  // The buyer's cart priced at the catalog's current figures.
  Result<CartView> View(std::string_view buyer_id);
  // Adds to the cart (merging with a line of the same listing). Returns the
  // line and whether it is new. kNotFound "listing-not-found" unless the
  // listing is active; see CheckLine and CartStore::Add for the rest.
  Result<CartStore::Added> Add(std::string_view buyer_id, std::string_view listing_id, int64_t quantity);
  Result<CartLine> SetQuantity(std::string_view buyer_id, std::string_view line_id, int64_t quantity);
  Status Remove(std::string_view buyer_id, std::string_view line_id);

 private:
  CartStore& store_;
  catalog::CatalogClient& catalog_;
  const Clock& clock_;
};

}  // namespace agora::orders
