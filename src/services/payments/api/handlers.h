// HTTP handlers of the payments service: the sandbox gateway's
// tokenization endpoint (outside the /v1 API), provider webhooks, seller
// balances and payouts.
#pragma once

#include "core/clock.h"
#include "core/http/app.h"
#include "core/idempotency/idempotency.h"
#include "services/payments/domain/payment_service.h"
#include "services/payments/store/sql_store.h"

namespace agora::payments {

// POST /sandbox/v1/tokens: the only route that accepts card numbers.
void AddSandboxRoutes(http::App& app, SandboxTokenStore& tokens, const Clock& clock);

// POST /v1/payments/webhooks/{provider}, GET /v1/sellers/me/balance,
// GET /v1/sellers/me/payouts, POST /v1/admin/payouts.
void AddPaymentRoutes(http::App& app, PaymentService& payments, idempotency::Store& keys);

}  // namespace agora::payments
