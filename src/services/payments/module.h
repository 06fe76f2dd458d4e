// Wiring of the payments service: its database (SQLite file or a PostgreSQL
// schema), migrations, the built-in sandbox gateway's tokenization endpoint,
// and the ledger check. Payment intents, webhooks and payouts come with the
// orders work.
#pragma once

#include <memory>
#include <string>

#include "core/clock.h"
#include "core/http/app.h"
#include "core/result.h"
#include "services/payments/ledger/ledger.h"

namespace agora::payments {

struct ModuleOptions {
  std::string data_dir = "./data";
  std::string database_url;  // empty: data_dir/payments.db
  // The built-in sandbox gateway (tokenization at /sandbox/v1/tokens). On by
  // default; off once a real provider is configured.
  bool sandbox = true;
};

// Opens the payments database of `options` (migrating it) and checks the
// ledger (`agora ledger verify`). kUnavailable when it cannot be opened.
Result<ledger::VerifyReport> VerifyLedger(const ModuleOptions& options);

class Module {
 public:
  static Result<std::unique_ptr<Module>> Open(const ModuleOptions& options, const Clock& clock);
  ~Module();

  void AddRoutes(http::App& app);
  Status Ready();

 private:
  struct Impl;
  explicit Module(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora::payments
