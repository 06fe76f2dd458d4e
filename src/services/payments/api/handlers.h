// HTTP handlers of the payments service. Today: the sandbox gateway's
// tokenization endpoint, outside the /v1 API.
#pragma once

#include "core/clock.h"
#include "core/http/app.h"
#include "services/payments/store/sql_store.h"

namespace agora::payments {

// POST /sandbox/v1/tokens: the only route that accepts card numbers.
void AddSandboxRoutes(http::App& app, SandboxTokenStore& tokens, const Clock& clock);

}  // namespace agora::payments
