// Wiring of the orders service: its database (SQLite file or a PostgreSQL
// schema), migrations, the cart, checkout and orders, the outbox relay, the
// consumer of payments events and the sweeper (payment timeouts, automatic
// delivery, completion after the dispute window).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/events/events.h"
#include "core/http/app.h"
#include "core/metrics.h"
#include "core/result.h"
#include "services/catalog/client.h"
#include "services/orders/domain/order_service.h"
#include "services/payments/client.h"

namespace agora::orders {

struct ModuleOptions {
  std::string data_dir = "./data";
  std::string database_url;  // empty: data_dir/orders.db
  OrderOptions orders;
  std::chrono::milliseconds sweep_interval{1000};
};

class Module {
 public:
  static Result<std::unique_ptr<Module>> Open(const ModuleOptions& options, catalog::CatalogClient& catalog,
                                              payments::PaymentsClient& payments, const Clock& clock);
  ~Module();  // Stop()s

  void AddRoutes(http::App& app);
  // Subscribes to payments events (before bus.Start()).
  void Subscribe(events::Bus& bus);
  // Queues on `bus` (before bus.Start() and before any relay starts) the
  // payments events a crash may have lost, read through `payments_outbox`.
  Status Replay(events::Bus& bus, const events::OutboxReader& payments_outbox);
  // Starts the outbox relay to `bus` and the background work.
  void Start(events::Bus& bus, metrics::Registry& metrics);
  void Stop();
  Status Ready();

  // The orders outbox, for consumers catching up.
  Result<std::vector<events::Event>> EventsAfter(int64_t after_seq, int limit);
  OrderService& service();

 private:
  struct Impl;
  explicit Module(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora::orders
