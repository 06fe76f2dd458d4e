#include "services/identity/module.h"

#include <filesystem>

#include "core/db/db.h"
#include "services/identity/api/handlers.h"
#include "services/identity/store/sql_store.h"

namespace agora::identity {

struct Module::Impl {
  std::unique_ptr<db::Database> db;
  std::unique_ptr<SqlIdentityStore> store;
  std::unique_ptr<FileMailbox> mailbox;
  std::shared_ptr<crypto::KeyRing> keys;
  std::shared_ptr<crypto::Aead> aead;
  std::unique_ptr<IdentityService> service;
  std::unique_ptr<events::OutboxRelay> relay;
};

Module::Module(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Module::~Module() { Stop(); }

Result<std::unique_ptr<Module>> Module::Open(const ModuleOptions& options, const Clock& clock) {
  namespace fs = std::filesystem;
  auto impl = std::make_unique<Impl>();
  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec) return Error::Unavailable("Cannot create the data folder " + options.data_dir + ": " + ec.message());

  // 24 connections: enough for every blocking-pool and CPU-pool thread plus
  // the I/O threads (inline reads), so an I/O thread never waits for one.
  AGORA_ASSIGN_OR_RETURN(impl->db, db::OpenServiceDatabase(options.data_dir, options.database_url, "identity", 24));
  AGORA_RETURN_IF_ERROR(impl->db->Migrate("identity", IdentityMigrations()));
  AGORA_RETURN_IF_ERROR(impl->db->Migrate("identity.events", events::Migrations()));

  const fs::path key_dir = fs::path(options.data_dir) / "keys";
  AGORA_ASSIGN_OR_RETURN(impl->keys, crypto::KeyRing::LoadOrCreate(key_dir, clock));
  // A rotated-out key verifies tokens until the last one it signed expires.
  impl->keys->RetireOlderThan(clock.Now(), options.service.access_ttl + std::chrono::minutes(1));
  AGORA_ASSIGN_OR_RETURN(crypto::Aead aead, crypto::Aead::LoadOrCreate(key_dir, clock));
  impl->aead = std::make_shared<crypto::Aead>(std::move(aead));

  // The embedded SQLite file has one writer process: this one.
  impl->store = std::make_unique<SqlIdentityStore>(*impl->db, impl->db->dialect() == db::Dialect::kSqlite);
  impl->mailbox = std::make_unique<FileMailbox>(fs::path(options.data_dir) / "mailbox");
  impl->service = std::make_unique<IdentityService>(options.service, *impl->store, impl->keys, impl->aead,
                                                    *impl->mailbox, clock);
  return std::unique_ptr<Module>(new Module(std::move(impl)));
}

void Module::AddRoutes(http::App& app) {
  identity::AddRoutes(app, *impl_->service, impl_->db->dialect() == db::Dialect::kSqlite);
}

void Module::Start(events::Bus& bus, metrics::Registry& metrics) {
  impl_->relay = std::make_unique<events::OutboxRelay>(*impl_->db, bus);
  auto* relay = impl_->relay.get();
  impl_->store->SetOnEventsCommitted([relay] { relay->Notify(); });
  events::ExportServiceMetrics(metrics, "identity", *impl_->db, *relay);
  relay->Start();
}

void Module::Stop() {
  if (impl_->relay) impl_->relay->Stop();
}

Status Module::Ready() { return impl_->db->Ping(); }

IdentityService& Module::service() { return *impl_->service; }

std::shared_ptr<crypto::KeyRing> Module::keys() const { return impl_->keys; }

}  // namespace agora::identity
