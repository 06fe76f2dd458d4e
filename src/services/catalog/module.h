// Wiring of the catalog service: its database (SQLite file or a PostgreSQL
// schema), migrations, store, domain service, routes, outbox relay and the
// sweeper that expires stock reservations.
#pragma once

#include <memory>
#include <string>

#include "core/clock.h"
#include "core/crypto/cursor.h"
#include "core/events/events.h"
#include "core/http/app.h"
#include "core/metrics.h"
#include "services/catalog/domain/service.h"

namespace agora::catalog {

struct ModuleOptions {
  std::string data_dir = "./data";
  std::string database_url;  // empty: data_dir/catalog.db
  CatalogOptions service;
  // How often held reservations past their time are released.
  std::chrono::milliseconds expiry_interval{1000};
};

class Module {
 public:
  static Result<std::unique_ptr<Module>> Open(const ModuleOptions& options, const Clock& clock);
  ~Module();

  void AddRoutes(http::App& app, const crypto::CursorCodec& cursors);
  // Starts the outbox relay to `bus` and the reservation sweeper; exports
  // the outbox lag and pool metrics.
  void Start(events::Bus& bus, metrics::Registry& metrics);
  void Stop();
  Status Ready();

  CatalogService& service();
  // What other services (orders, search) call.
  CatalogClient& client();

 private:
  struct Impl;
  explicit Module(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora::catalog
