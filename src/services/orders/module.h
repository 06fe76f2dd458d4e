// Wiring of the orders service: its database (SQLite file or a PostgreSQL
// schema), migrations and the cart. Checkout, orders and their state
// machine come with the payments work.
#pragma once

#include <memory>
#include <string>

#include "core/clock.h"
#include "core/http/app.h"
#include "core/result.h"
#include "services/catalog/client.h"

namespace agora::orders {

struct ModuleOptions {
  std::string data_dir = "./data";
  std::string database_url;  // empty: data_dir/orders.db
};

class Module {
 public:
  static Result<std::unique_ptr<Module>> Open(const ModuleOptions& options, catalog::CatalogClient& catalog,
                                              const Clock& clock);
  ~Module();

  void AddRoutes(http::App& app);
  Status Ready();

 private:
  struct Impl;
  explicit Module(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora::orders
