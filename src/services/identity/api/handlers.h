// Identity's HTTP adapter: parses and validates requests, calls
// IdentityService, shapes responses. Routes and their gateway policy are
// declared here.
#pragma once

#include "core/http/app.h"
#include "services/identity/domain/service.h"

namespace agora::identity {

// `reads_inline`: read-only routes run on the I/O threads. Right for an
// embedded SQLite store (a WAL read never waits for a writer and takes
// microseconds); wrong for a networked database, whose reads go to the
// blocking pool.
void AddRoutes(http::App& app, IdentityService& service, bool reads_inline);

}  // namespace agora::identity
