#include "services/payments/module.h"


#include "core/db/db.h"
#include "services/payments/api/handlers.h"
#include "services/payments/store/sql_store.h"

namespace agora::payments {

struct Module::Impl {
  ModuleOptions options;
  const Clock* clock = nullptr;
  std::unique_ptr<db::Database> db;
  std::unique_ptr<SandboxTokenStore> tokens;
};

Module::Module(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Module::~Module() = default;

namespace {

// The service's database (data_dir/payments.db or the "payments" schema),
// migrated.
Result<std::unique_ptr<db::Database>> OpenDatabase(const ModuleOptions& options) {
  AGORA_ASSIGN_OR_RETURN(auto db, db::OpenServiceDatabase(options.data_dir, options.database_url, "payments"));
  AGORA_RETURN_IF_ERROR(db->Migrate("payments", PaymentsMigrations()));
  return db;
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
  return std::unique_ptr<Module>(new Module(std::move(impl)));
}

void Module::AddRoutes(http::App& app) {
  if (impl_->options.sandbox) AddSandboxRoutes(app, *impl_->tokens, *impl_->clock);
}

Status Module::Ready() { return impl_->db->Ping(); }

}  // namespace agora::payments
