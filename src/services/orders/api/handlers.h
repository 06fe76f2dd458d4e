// HTTP handlers of the orders service. Today: the cart.
#pragma once

#include "core/http/app.h"
#include "services/orders/domain/cart_service.h"

namespace agora::orders {

void AddRoutes(http::App& app, CartService& carts);

}  // namespace agora::orders
