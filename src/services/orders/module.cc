#include "services/orders/module.h"


#include "core/db/db.h"
#include "services/orders/api/handlers.h"

namespace agora::orders {

struct Module::Impl {
  std::unique_ptr<db::Database> db;
  std::unique_ptr<CartStore> carts;
  std::unique_ptr<CartService> cart_service;
};

Module::Module(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Module::~Module() = default;

Result<std::unique_ptr<Module>> Module::Open(const ModuleOptions& options, catalog::CatalogClient& catalog,
                                             const Clock& clock) {
  auto impl = std::make_unique<Impl>();
  AGORA_ASSIGN_OR_RETURN(impl->db, db::OpenServiceDatabase(options.data_dir, options.database_url, "orders"));
  AGORA_RETURN_IF_ERROR(impl->db->Migrate("orders", OrdersMigrations()));
  impl->carts = std::make_unique<CartStore>(*impl->db);
  impl->cart_service = std::make_unique<CartService>(*impl->carts, catalog, clock);
  return std::unique_ptr<Module>(new Module(std::move(impl)));
}

void Module::AddRoutes(http::App& app) { orders::AddRoutes(app, *impl_->cart_service); }

Status Module::Ready() { return impl_->db->Ping(); }

}  // namespace agora::orders
