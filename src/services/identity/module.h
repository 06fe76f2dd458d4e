// Wiring of the identity service: its database (SQLite file or a PostgreSQL
// schema), migrations, signing and encryption keys, store, domain service,
// routes and outbox relay. Used by `agora serve` and by the admin commands.
#pragma once

#include <memory>
#include <string>

#include "core/clock.h"
#include "core/crypto/jws.h"
#include "core/events/events.h"
#include "core/http/app.h"
#include "core/metrics.h"
#include "services/identity/domain/service.h"

namespace agora::identity {

struct ModuleOptions {
  std::string data_dir = "./data";
  std::string database_url;  // empty: data_dir/identity.db
  IdentityOptions service;
};

class Module {
 public:
  // Opens (and migrates) the database and loads or creates the keys.
  // Fails with a clear message when the database or data folder is unusable.
  static Result<std::unique_ptr<Module>> Open(const ModuleOptions& options, const Clock& clock);
  ~Module();

  void AddRoutes(http::App& app);
  // Starts moving outbox events to `bus`, and exports the outbox lag and
  // database pool metrics.
  void Start(events::Bus& bus, metrics::Registry& metrics);
  void Stop();
  // For /readyz: the database answers.
  Status Ready();

  IdentityService& service();
  std::shared_ptr<crypto::KeyRing> keys() const;

 private:
  struct Impl;
  explicit Module(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora::identity
