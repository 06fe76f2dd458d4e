// Wiring of the payments service: its database (SQLite file or a PostgreSQL
// schema), migrations, the payment provider (the built-in sandbox gateway
// unless a real one is configured), the payment service with its webhook,
// seller balance and payout routes, the outbox relay, the consumer of
// orders events and the payout schedule.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/events/events.h"
#include "core/http/app.h"
#include "core/metrics.h"
#include "core/result.h"
#include "services/payments/client.h"
#include "services/payments/domain/payment_service.h"
#include "services/payments/ledger/ledger.h"
#include "services/payments/provider/stripe.h"
#include "services/payments/sandbox/gateway.h"

namespace agora::payments {

struct ModuleOptions {
  std::string data_dir = "./data";
  std::string database_url;  // empty: data_dir/payments.db
  // "sandbox": the built-in sandbox gateway (tokenization at
  // /sandbox/v1/tokens), the default; "stripe": Stripe's API with `stripe`
  // (the sandbox and its routes are then off).
  std::string provider = "sandbox";
  StripeOptions stripe;
  // Where the sandbox sends its webhooks: this server's public URL +
  // /v1/payments/webhooks/sandbox (set by the wiring).
  std::string sandbox_webhook_url;
  sandbox::DeliverySettings sandbox_delivery;
  PaymentOptions payments;
  // Seller payouts run this often (0: only when an admin asks).
  std::chrono::seconds payout_interval{0};
};

// Opens the payments database of `options` (migrating it) and checks the
// ledger (`agora ledger verify`). kUnavailable when it cannot be opened.
Result<ledger::VerifyReport> VerifyLedger(const ModuleOptions& options);

// Opens the payments service of `options` without starting it and compares
// the ledger with the provider (`agora ledger reconcile`).
Result<PaymentService::ReconcileReport> ReconcileLedger(const ModuleOptions& options);

class Module {
 public:
  static Result<std::unique_ptr<Module>> Open(const ModuleOptions& options, const Clock& clock);
  ~Module();  // Stop()s

  void AddRoutes(http::App& app);
  // Subscribes to orders events (before bus.Start()).
  void Subscribe(events::Bus& bus);
  // Queues on `bus` (before bus.Start() and before any relay starts) the
  // orders events a crash may have lost, read through `orders_outbox`.
  Status Replay(events::Bus& bus, const events::OutboxReader& orders_outbox);
  // Starts the outbox relay to `bus` and the background work.
  void Start(events::Bus& bus, metrics::Registry& metrics);
  void Stop();
  Status Ready();

  PaymentsClient& client();
  // The payments outbox, for consumers catching up.
  Result<std::vector<events::Event>> EventsAfter(int64_t after_seq, int limit);

 private:
  friend Result<PaymentService::ReconcileReport> ReconcileLedger(const ModuleOptions& options);
  struct Impl;
  explicit Module(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora::payments
