// `agora serve`: builds the gateway and the services named by --services,
// in start-up order, and runs the HTTP server until SIGTERM/SIGINT.
#pragma once

#include "app/config.h"

namespace agora::app {

// Returns the process exit status (0 after a clean shutdown).
int Serve(const ServeConfig& config);

// Prints every served route as a JSON line {method, path, authenticated, roles}
// (the OpenAPI spec test compares them with api/openapi.yaml).
int PrintRoutes(const ServeConfig& config);

}  // namespace agora::app
