// Identity's HTTP adapter: parses and validates requests, calls
// IdentityService, shapes responses. Routes and their gateway policy are
// declared here.
#pragma once

#include "core/http/app.h"
#include "services/identity/domain/service.h"

namespace agora::identity {

void AddRoutes(http::App& app, IdentityService& service);

}  // namespace agora::identity
