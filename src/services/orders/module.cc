#include "services/orders/module.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/db/db.h"
#include "core/idempotency/idempotency.h"
#include "core/log.h"
#include "services/orders/api/handlers.h"

namespace agora::orders {

struct Module::Impl {
  ModuleOptions options;
  std::unique_ptr<db::Database> db;
  std::unique_ptr<CartStore> carts;
  std::unique_ptr<CartService> cart_service;
  std::unique_ptr<OrderService> orders;
  std::unique_ptr<idempotency::Store> keys;
  std::unique_ptr<events::OutboxRelay> relay;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // GUARDED_BY(mu)
  std::thread sweeper;

  void Sweep() {
    int64_t passes = 0;
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, options.sweep_interval, [&] { return stopping; })) {
      lock.unlock();
      auto n = orders->Sweep();
      if (!n.ok()) {
        log::Warn("orders sweep failed", {{"error", n.error().message}});
      } else if (*n > 0) {
        log::Info("orders moved by the sweeper", {{"count", *n}});
      }
      if (++passes % 3600 == 0) (void)keys->Purge();
      lock.lock();
    }
  }
};

Module::Module(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Module::~Module() { Stop(); }

Result<std::unique_ptr<Module>> Module::Open(const ModuleOptions& options, catalog::CatalogClient& catalog,
                                             payments::PaymentsClient& payments, const Clock& clock) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  AGORA_ASSIGN_OR_RETURN(impl->db, db::OpenServiceDatabase(options.data_dir, options.database_url, "orders", 24));
  AGORA_RETURN_IF_ERROR(impl->db->Migrate("orders", OrdersMigrations()));
  AGORA_RETURN_IF_ERROR(impl->db->Migrate("orders.checkout", CheckoutMigrations()));
  AGORA_RETURN_IF_ERROR(impl->db->Migrate("orders.events", events::Migrations()));
  AGORA_RETURN_IF_ERROR(impl->db->Migrate("orders.idempotency", idempotency::Migrations()));
  impl->carts = std::make_unique<CartStore>(*impl->db);
  impl->cart_service = std::make_unique<CartService>(*impl->carts, catalog, clock);
  impl->orders = std::make_unique<OrderService>(*impl->db, *impl->carts, catalog, payments, clock, options.orders);
  impl->keys = std::make_unique<idempotency::Store>(*impl->db, clock);
  return std::unique_ptr<Module>(new Module(std::move(impl)));
}

void Module::AddRoutes(http::App& app) {
  orders::AddRoutes(app, *impl_->cart_service);
  AddOrderRoutes(app, *impl_->orders, *impl_->keys);
}

void Module::Subscribe(events::Bus& bus) {
  OrderService* orders = impl_->orders.get();
  bus.Subscribe(std::string(OrderService::kPaymentsConsumer), "payment.",
                [orders](const events::Event& e) { return orders->ApplyPaymentEvent(e); });
}

Status Module::Replay(events::Bus& bus, const events::OutboxReader& payments_outbox) {
  // What the in-memory bus lost in a crash or at shutdown: the payments events
  // after the last one applied (and a window before it), queued on the bus
  // ahead of every live event; the consumer dedupes.
  AGORA_ASSIGN_OR_RETURN(int64_t position, events::LoadPosition(*impl_->db, OrderService::kPaymentsConsumer));
  AGORA_ASSIGN_OR_RETURN(int64_t replayed,
                         events::CatchUp(position, 1000, payments_outbox, "payment.",
                                         [&bus](const events::Event& e) { return bus.Publish(e); }));
  if (replayed > 0) log::Info("orders replays payments events", {{"events", replayed}, {"after_seq", position}});
  return Ok();
}

void Module::Start(events::Bus& bus, metrics::Registry& metrics) {
  impl_->relay = std::make_unique<events::OutboxRelay>(*impl_->db, bus);
  auto* relay = impl_->relay.get();
  impl_->orders->SetOnEventsCommitted([relay] { relay->Notify(); });
  events::ExportServiceMetrics(metrics, "orders", *impl_->db, *relay);
  relay->Start();
  impl_->sweeper = std::thread([impl = impl_.get()] { impl->Sweep(); });
}

void Module::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->sweeper.joinable()) impl_->sweeper.join();
  if (impl_->relay) impl_->relay->Stop();
}

Status Module::Ready() { return impl_->db->Ping(); }

Result<std::vector<events::Event>> Module::EventsAfter(int64_t after_seq, int limit) {
  return events::ReadOutbox(*impl_->db, after_seq, limit);
}

OrderService& Module::service() { return *impl_->orders; }

}  // namespace agora::orders
