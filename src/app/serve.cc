#include "app/serve.h"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <functional>

#include "core/clock.h"
#include "core/events/events.h"
#include "core/http/problem.h"
#include "core/http/server.h"
#include "core/log.h"
#include "core/strings.h"
#include "services/gateway/jwt_authenticator.h"
#include "core/crypto/cursor.h"
#include "services/catalog/module.h"
#include "services/identity/module.h"
#include "services/orders/module.h"
#include "services/payments/module.h"
#include "services/search/module.h"

namespace agora::app {
namespace {

// The services this build has, in start-up order. The gateway is always on:
// it is the process's HTTP front door.
constexpr const char* kServices[] = {"identity", "catalog", "search", "payments", "orders"};

bool ServicesValid(const std::string& list, std::string& bad) {
  if (list == "all") return true;
  for (std::string_view name : SplitList(list)) {
    bool known = name == "gateway";
    for (const char* s : kServices) known = known || name == s;
    if (!known) {
      bad = std::string(name);
      return false;
    }
  }
  return true;
}

// A service's readiness check, named for /readyz.
struct ReadyCheck {
  std::string name;
  std::function<Status()> check;
};

void AddOperationsRoutes(http::App& app, metrics::Registry& metrics, std::vector<ReadyCheck> checks) {
  using http::Execution;
  using http::Method;
  app.Add(http::MakeRoute(Method::kGet, "/healthz", Execution::kInline, [](http::Request&) {
    return http::Response::Text(200, R"({"status":"ok"})", "application/json");
  }));
  app.Add(http::MakeRoute(Method::kGet, "/readyz", Execution::kBlocking, [checks = std::move(checks)](http::Request&) {
    boost::json::object results;
    bool ready = true;
    for (const auto& c : checks) {
      const bool ok = c.check().ok();
      ready = ready && ok;
      results[c.name] = ok ? "ok" : "unavailable";
    }
    return http::Response::Json(ready ? 200 : 503,
                                boost::json::object{{"status", ready ? "ready" : "not ready"}, {"checks", results}});
  }));
  app.Add(http::MakeRoute(Method::kGet, "/metrics", Execution::kInline, [&metrics](http::Request&) {
    return http::Response::Text(200, metrics.Render(), "text/plain; version=0.0.4; charset=utf-8");
  }));
}

// The process's pieces, wired in start-up order.
struct Wiring {
  explicit Wiring(const ServeConfig& config)
      : app(http::AppOptions{config.cors_origins, config.access_log, config.trusted_proxies}, metrics) {}
  metrics::Registry metrics;
  http::App app;
  std::unique_ptr<identity::Module> identity;
  std::unique_ptr<crypto::CursorCodec> cursors;
  std::unique_ptr<catalog::Module> catalog;
  std::unique_ptr<search::Module> search;
  std::unique_ptr<payments::Module> payments;
  std::unique_ptr<orders::Module> orders;
};

// Opens the services and adds their routes, the token check and the
// operations routes to `w.app`.
Status WireServices(Wiring& w, const ServeConfig& config, const std::string& issuer, const Clock& clock) {
  identity::ModuleOptions identity_options;
  identity_options.data_dir = config.data_dir;
  identity_options.database_url = config.database_url;
  identity_options.service.issuer = issuer;
  identity_options.service.public_url = issuer;
  identity_options.service.access_ttl = std::chrono::seconds(config.access_token_ttl_s);
  identity_options.service.refresh_ttl = std::chrono::seconds(config.refresh_token_ttl_s);
  identity_options.service.login_free_failures_per_account = config.login_max_failures;
  identity_options.service.login_free_failures_per_ip = config.login_max_failures * 4;
  auto identity = identity::Module::Open(identity_options, clock);
  if (!identity.ok()) {
    return Error::Unavailable("cannot start the identity service: " + identity.error().message);
  }
  w.identity = std::move(*identity);
  w.identity->AddRoutes(w.app);
  w.app.SetAuthenticator(std::make_shared<gateway::JwtAuthenticator>(w.identity->keys(), issuer,
                                                                     identity_options.service.audience, clock));

  auto cursors = crypto::CursorCodec::LoadOrCreate(std::filesystem::path(config.data_dir) / "keys");
  if (!cursors.ok()) return Error::Unavailable("cannot load the cursor key: " + cursors.error().message);
  w.cursors = std::make_unique<crypto::CursorCodec>(std::move(*cursors));

  catalog::ModuleOptions catalog_options;
  catalog_options.data_dir = config.data_dir;
  catalog_options.database_url = config.database_url;
  auto catalog = catalog::Module::Open(catalog_options, clock);
  if (!catalog.ok()) return Error::Unavailable("cannot start the catalog service: " + catalog.error().message);
  w.catalog = std::move(*catalog);
  w.catalog->AddRoutes(w.app, *w.cursors);

  search::ModuleOptions search_options;
  search_options.data_dir = config.data_dir;
  search_options.cache_bytes = config.search_cache_mb << 20;
  auto search = search::Module::Open(search_options, w.catalog->client(), *w.cursors, clock);
  if (!search.ok()) return Error::Unavailable("cannot start the search service: " + search.error().message);
  w.search = std::move(*search);
  w.search->AddRoutes(w.app);

  payments::ModuleOptions payments_options;
  payments_options.data_dir = config.data_dir;
  payments_options.database_url = config.database_url;
  payments_options.sandbox_webhook_url = issuer + "/v1/payments/webhooks/sandbox";
  payments_options.provider = config.payment_provider;
  payments_options.stripe.base_url = config.stripe_api_url;
  payments_options.stripe.secret_key = config.stripe_secret_key;
  payments_options.stripe.webhook_secret = config.stripe_webhook_secret;
  payments_options.payments.manual_capture = config.payment_capture == "manual";
  payments_options.payout_interval = std::chrono::seconds(config.payout_interval_s);
  auto payments = payments::Module::Open(payments_options, clock);
  if (!payments.ok()) return Error::Unavailable("cannot start the payments service: " + payments.error().message);
  w.payments = std::move(*payments);
  w.payments->AddRoutes(w.app);

  orders::ModuleOptions orders_options;
  orders_options.data_dir = config.data_dir;
  orders_options.database_url = config.database_url;
  auto days = [](double d) {
    return std::chrono::milliseconds(static_cast<int64_t>(d * 24 * 3600 * 1000));
  };
  orders_options.orders.payment_timeout = std::chrono::seconds(config.checkout_payment_timeout_s);
  orders_options.orders.auto_delivery = days(config.order_auto_delivery_days);
  orders_options.orders.dispute_window = days(config.order_dispute_window_days);
  orders_options.orders.commission.default_bps = config.commission_bps;
  auto rates = orders::ParseCategoryRates(config.commission_category_bps);
  if (!rates.ok()) return Error::InvalidArgument("--commission-category-bps: " + rates.error().message);
  orders_options.orders.commission.category_bps = std::move(*rates);
  auto orders = orders::Module::Open(orders_options, w.catalog->client(), w.payments->client(), clock);
  if (!orders.ok()) return Error::Unavailable("cannot start the orders service: " + orders.error().message);
  w.orders = std::move(*orders);
  w.orders->AddRoutes(w.app);

  AddOperationsRoutes(w.app, w.metrics,
                      {{"identity.database", [m = w.identity.get()] { return m->Ready(); }},
                       {"catalog.database", [m = w.catalog.get()] { return m->Ready(); }},
                       {"search.index", [m = w.search.get()] { return m->Ready(); }},
                       {"orders.database", [m = w.orders.get()] { return m->Ready(); }},
                       {"payments.database", [m = w.payments.get()] { return m->Ready(); }}});
  return Ok();
}

}  // namespace

int PrintRoutes(const ServeConfig& config) {
  Wiring w(config);
  if (Status s = WireServices(w, config, "http://127.0.0.1", SystemClock::Instance()); !s.ok()) {
    log::Error(s.error().message);
    return 1;
  }
  for (const auto& r : w.app.router().routes()) {
    boost::json::array roles;
    for (const auto& role : r.roles) roles.emplace_back(role);
    std::string line = boost::json::serialize(boost::json::object{{"method", http::MethodName(r.method)},
                                                                  {"path", r.pattern},
                                                                  {"authenticated", r.authenticated},
                                                                  {"optional_authentication", r.optional_authentication},
                                                                  {"roles", std::move(roles)}});
    std::puts(line.c_str());
  }
  return 0;
}

int Serve(const ServeConfig& config) {
  log::SetLevel(config.log_level);
  std::string bad;
  if (!ServicesValid(config.services, bad)) {
    log::Error("unknown service in --services", {{"service", bad}});
    return 2;
  }
  http::ServerOptions server_options;
  if (!SplitHostPort(config.listen, server_options.host, server_options.port)) {
    log::Error("--listen must be host:port", {{"listen", config.listen}});
    return 2;
  }
  server_options.max_header_bytes = config.max_header_bytes;
  server_options.max_body_bytes = config.max_body_bytes;
  server_options.read_timeout = std::chrono::seconds(config.read_timeout_s);
  server_options.idle_timeout = std::chrono::seconds(config.idle_timeout_s);
  server_options.max_connections = config.max_connections;
  server_options.shutdown_grace = std::chrono::seconds(config.shutdown_grace_s);
  server_options.io_threads = config.io_threads;
  server_options.blocking_threads = config.blocking_threads;
  server_options.cpu_threads = config.cpu_threads;
  server_options.max_pending_jobs = config.max_pending_jobs;
  server_options.tls_cert_file = config.tls_cert;
  server_options.tls_key_file = config.tls_key;

  Wiring w(config);
  http::Server server(server_options, w.app);
  // Listen first: with port 0 the token issuer needs the bound port. Routes
  // are all added before Run(), so no request sees a half-wired app.
  if (Status s = server.Listen(); !s.ok()) {
    log::Error("cannot start", {{"error", s.error().message}});
    return 1;
  }
  const bool tls = !config.tls_cert.empty();
  const std::string issuer = !config.public_url.empty()
                                 ? config.public_url
                                 : fmt::format("{}://{}:{}", tls ? "https" : "http", server_options.host, server.port());
  const Clock& clock = SystemClock::Instance();
  if (Status s = WireServices(w, config, issuer, clock); !s.ok()) {
    log::Error(s.error().message);
    return 1;
  }
  w.metrics.NewGauge("agora_http_connections", "Open client connections.",
                     [&server] { return static_cast<double>(server.active_connections()); });
  w.metrics.NewGauge("agora_worker_pool_pending_jobs", "Handler jobs queued or running, by pool.",
                     [&server] { return static_cast<double>(server.pending_jobs(http::Execution::kBlocking)); },
                     R"(pool="blocking")");
  w.metrics.NewGauge("agora_worker_pool_pending_jobs", "Handler jobs queued or running, by pool.",
                     [&server] { return static_cast<double>(server.pending_jobs(http::Execution::kCpu)); },
                     R"(pool="cpu")");

  auto bus = events::NewInProcessBus();
  w.search->Subscribe(*bus);
  w.orders->Subscribe(*bus);
  w.payments->Subscribe(*bus);
  // Events the in-memory bus lost at the last stop go first.
  for (Status s : {w.payments->Replay(*bus, [m = w.orders.get()](int64_t after, int limit) {
                     return m->EventsAfter(after, limit);
                   }),
                   w.orders->Replay(*bus, [m = w.payments.get()](int64_t after, int limit) {
                     return m->EventsAfter(after, limit);
                   })}) {
    if (!s.ok()) {
      log::Error("cannot replay events between orders and payments", {{"error", s.error().message}});
      return 1;
    }
  }
  bus->Start();
  w.identity->Start(*bus, w.metrics);
  w.catalog->Start(*bus, w.metrics);
  w.search->Start(w.metrics);
  w.payments->Start(*bus, w.metrics);
  w.orders->Start(*bus, w.metrics);
  log::Info("listening", {{"address", fmt::format("{}:{}", server_options.host, server.port())},
                          {"port", server.port()},
                          {"tls", tls},
                          {"data_dir", config.data_dir},
                          {"database", config.database_url.empty() ? "sqlite" : "postgresql"}});
  server.Run();
  // Producers first (their relays flush what is committed), then the bus,
  // then the search writer's final commit.
  w.orders->Stop();
  w.payments->Stop();
  w.catalog->Stop();
  w.identity->Stop();
  bus->Stop();
  w.search->Stop();
  log::Info("stopped");
  return 0;
}

}  // namespace agora::app
