#include "services/catalog/module.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/db/db.h"
#include "core/log.h"
#include "services/catalog/api/handlers.h"
#include "services/catalog/store/sql_store.h"

namespace agora::catalog {

struct Module::Impl {
  ModuleOptions options;
  std::unique_ptr<db::Database> db;
  std::unique_ptr<SqlCatalogStore> store;
  std::unique_ptr<CatalogService> service;
  std::unique_ptr<events::OutboxRelay> relay;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // GUARDED_BY(mu)
  std::thread sweeper;

  void Sweep() {
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, options.expiry_interval, [&] { return stopping; })) {
      lock.unlock();
      auto n = service->ExpireReservations();
      if (!n.ok()) {
        log::Warn("reservation expiry failed", {{"error", n.error().message}});
      } else if (*n > 0) {
        log::Info("reservations expired", {{"count", *n}});
      }
      lock.lock();
    }
  }
};

Module::Module(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Module::~Module() { Stop(); }

Result<std::unique_ptr<Module>> Module::Open(const ModuleOptions& options, const Clock& clock) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  AGORA_ASSIGN_OR_RETURN(impl->db, db::OpenServiceDatabase(options.data_dir, options.database_url, "catalog", 24));
  AGORA_RETURN_IF_ERROR(impl->db->Migrate("catalog", CatalogMigrations()));
  AGORA_RETURN_IF_ERROR(impl->db->Migrate("catalog.events", events::Migrations()));
  // The embedded SQLite file has one writer process: this one.
  impl->store = std::make_unique<SqlCatalogStore>(*impl->db, impl->db->dialect() == db::Dialect::kSqlite);
  impl->service = std::make_unique<CatalogService>(options.service, *impl->store, clock);
  return std::unique_ptr<Module>(new Module(std::move(impl)));
}

void Module::AddRoutes(http::App& app, const crypto::CursorCodec& cursors) {
  catalog::AddRoutes(app, *impl_->service, cursors, impl_->db->dialect() == db::Dialect::kSqlite);
}

void Module::Start(events::Bus& bus, metrics::Registry& metrics) {
  impl_->relay = std::make_unique<events::OutboxRelay>(*impl_->db, bus);
  auto* relay = impl_->relay.get();
  impl_->store->SetOnEventsCommitted([relay] { relay->Notify(); });
  events::ExportServiceMetrics(metrics, "catalog", *impl_->db, *relay);
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

CatalogService& Module::service() { return *impl_->service; }

CatalogClient& Module::client() { return *impl_->service; }

}  // namespace agora::catalog
