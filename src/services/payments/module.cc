#include "services/payments/module.h"

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/crypto/key_files.h"
#include "core/crypto/random.h"
#include "core/db/db.h"
#include "core/idempotency/idempotency.h"
#include "core/log.h"
#include "services/payments/api/handlers.h"
#include "services/payments/store/sql_store.h"

namespace agora::payments {

struct Module::Impl {
  ModuleOptions options;
  const Clock* clock = nullptr;
  std::unique_ptr<db::Database> db;
  std::unique_ptr<SandboxTokenStore> tokens;
  std::unique_ptr<sandbox::Gateway> gateway;  // the sandbox provider, or
  std::unique_ptr<StripeProvider> stripe;     // Stripe's
  PaymentProvider* provider = nullptr;
  std::unique_ptr<PaymentService> service;
  std::unique_ptr<idempotency::Store> keys;
  std::unique_ptr<events::OutboxRelay> relay;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // GUARDED_BY(mu)
  std::thread scheduler;

  void Schedule() {
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, options.payout_interval, [&] { return stopping; })) {
      lock.unlock();
      auto paid = service->RunPayouts();
      if (!paid.ok()) {
        log::Warn("scheduled payouts failed", {{"error", paid.error().message}});
      } else if (!paid->empty()) {
        log::Info("scheduled payouts ran", {{"payouts", static_cast<int64_t>(paid->size())}});
      }
      (void)keys->Purge();
      lock.lock();
    }
  }
};

Module::Module(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Module::~Module() { Stop(); }

namespace {

// The service's database (data_dir/payments.db or the "payments" schema),
// migrated.
Result<std::unique_ptr<db::Database>> OpenDatabase(const ModuleOptions& options) {
  AGORA_ASSIGN_OR_RETURN(auto db, db::OpenServiceDatabase(options.data_dir, options.database_url, "payments", 24));
  AGORA_RETURN_IF_ERROR(db->Migrate("payments", PaymentsMigrations()));
  AGORA_RETURN_IF_ERROR(db->Migrate("payments.sandbox", sandbox::GatewayMigrations()));
  AGORA_RETURN_IF_ERROR(db->Migrate("payments.domain", DomainMigrations()));
  AGORA_RETURN_IF_ERROR(db->Migrate("payments.events", events::Migrations()));
  AGORA_RETURN_IF_ERROR(db->Migrate("payments.idempotency", idempotency::Migrations()));
  return db;
}

// The sandbox's webhook signing secret, kept beside the other keys so a
// restart keeps verifying what is still in flight.
Result<std::string> SandboxWebhookSecret(const std::string& data_dir) {
  const auto dir = std::filesystem::path(data_dir) / "keys";
  const auto path = dir / "sandbox-webhook-secret";
  auto existing = crypto::ReadWholeFile(path);
  if (existing.ok() && !existing->empty()) return *existing;
  if (!existing.ok() && existing.error().code != ErrorCode::kNotFound) return std::move(existing).error();
  AGORA_RETURN_IF_ERROR(crypto::EnsurePrivateDir(dir));
  std::string secret = "whsec_" + crypto::RandomToken(32);
  AGORA_RETURN_IF_ERROR(crypto::WriteFileAtomic(path, secret));
  return secret;
}

}  // namespace

Result<ledger::VerifyReport> VerifyLedger(const ModuleOptions& options) {
  AGORA_ASSIGN_OR_RETURN(auto db, OpenDatabase(options));
  return ledger::Verify(*db);
}

Result<std::unique_ptr<Module>> Module::Open(const ModuleOptions& options, const Clock& clock) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->clock = &clock;
  AGORA_ASSIGN_OR_RETURN(impl->db, OpenDatabase(options));
  impl->tokens = std::make_unique<SandboxTokenStore>(*impl->db);
  if (options.provider == "stripe") {
    AGORA_ASSIGN_OR_RETURN(impl->stripe, StripeProvider::Create(options.stripe));
    impl->provider = impl->stripe.get();
  } else if (options.provider == "sandbox") {
    sandbox::GatewayOptions gateway;
    gateway.webhook_url = options.sandbox_webhook_url;
    AGORA_ASSIGN_OR_RETURN(gateway.webhook_secret, SandboxWebhookSecret(options.data_dir));
    gateway.delivery = options.sandbox_delivery;
    impl->gateway = std::make_unique<sandbox::Gateway>(*impl->db, *impl->tokens, clock, gateway);
    impl->provider = impl->gateway.get();
  } else {
    return Error::InvalidArgument("unknown payment provider \"" + options.provider + "\" (sandbox or stripe)");
  }
  impl->service = std::make_unique<PaymentService>(*impl->db, *impl->provider, clock, options.payments);
  impl->keys = std::make_unique<idempotency::Store>(*impl->db, clock);
  return std::unique_ptr<Module>(new Module(std::move(impl)));
}

void Module::AddRoutes(http::App& app) {
  if (impl_->gateway) {
    AddSandboxRoutes(app, *impl_->tokens, *impl_->clock);
    sandbox::AddGatewayRoutes(app, *impl_->gateway);
  }
  AddPaymentRoutes(app, *impl_->service, *impl_->keys);
}

void Module::Subscribe(events::Bus& bus) {
  PaymentService* service = impl_->service.get();
  bus.Subscribe(std::string(PaymentService::kOrdersConsumer), "order.",
                [service](const events::Event& e) { return service->ApplyOrderEvent(e); });
}

Status Module::Replay(events::Bus& bus, const events::OutboxReader& orders_outbox) {
  // What the in-memory bus lost in a crash or at shutdown: the orders events
  // after the last one applied (and a window before it), queued on the bus
  // ahead of every live event; the consumer dedupes.
  AGORA_ASSIGN_OR_RETURN(int64_t position, events::LoadPosition(*impl_->db, PaymentService::kOrdersConsumer));
  AGORA_ASSIGN_OR_RETURN(int64_t replayed,
                         events::CatchUp(position, 1000, orders_outbox, "order.",
                                         [&bus](const events::Event& e) { return bus.Publish(e); }));
  if (replayed > 0) log::Info("payments replays orders events", {{"events", replayed}, {"after_seq", position}});
  return Ok();
}

void Module::Start(events::Bus& bus, metrics::Registry& metrics) {
  impl_->relay = std::make_unique<events::OutboxRelay>(*impl_->db, bus);
  auto* relay = impl_->relay.get();
  impl_->service->SetOnEventsCommitted([relay] { relay->Notify(); });
  events::ExportServiceMetrics(metrics, "payments", *impl_->db, *relay);
  relay->Start();
  if (impl_->gateway) impl_->gateway->Start();
  if (impl_->options.payout_interval.count() > 0) {
    impl_->scheduler = std::thread([impl = impl_.get()] { impl->Schedule(); });
  }
}

void Module::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->scheduler.joinable()) impl_->scheduler.join();
  if (impl_->gateway) impl_->gateway->Stop();
  if (impl_->relay) impl_->relay->Stop();
}

Status Module::Ready() { return impl_->db->Ping(); }

PaymentsClient& Module::client() { return *impl_->service; }

Result<PaymentService::ReconcileReport> ReconcileLedger(const ModuleOptions& options) {
  AGORA_ASSIGN_OR_RETURN(auto module, Module::Open(options, SystemClock::Instance()));
  return module->impl_->service->ReconcileWithProvider();
}

Result<std::vector<events::Event>> Module::EventsAfter(int64_t after_seq, int limit) {
  return events::ReadOutbox(*impl_->db, after_seq, limit);
}

}  // namespace agora::payments
