// HTTP handlers of the orders service: the cart, checkout and orders.
#pragma once

#include "core/http/app.h"
#include "core/idempotency/idempotency.h"
#include "services/orders/domain/cart_service.h"
#include "services/orders/domain/order_service.h"

namespace agora::orders {

void AddRoutes(http::App& app, CartService& carts);
void AddOrderRoutes(http::App& app, OrderService& orders, idempotency::Store& keys);

}  // namespace agora::orders
