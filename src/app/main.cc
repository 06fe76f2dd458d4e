// The agora executable: `agora serve` runs the services; `agora admin create`
// and `agora keys rotate` are operator commands on the same data.
#include <sodium.h>

#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "app/config.h"
#include "app/serve.h"
#include "core/log.h"
#include "services/catalog/domain/demo_data.h"
#include "services/catalog/module.h"
#include "services/identity/module.h"
#include "services/payments/module.h"
#include "services/search/module.h"

namespace {

// Opens service `Module` on the configured store for an operator command;
// prints why not and returns null on failure.
template <class Module, class Options>
std::unique_ptr<Module> OpenForCommand(const agora::app::ServeConfig& config) {
  Options options;
  options.data_dir = config.data_dir;
  options.database_url = config.database_url;
  auto module = Module::Open(options, agora::SystemClock::Instance());
  if (!module.ok()) {
    std::cerr << "agora: " << module.error().message << "\n";
    return nullptr;
  }
  return std::move(*module);
}

std::unique_ptr<agora::identity::Module> OpenIdentity(const agora::app::ServeConfig& config) {
  return OpenForCommand<agora::identity::Module, agora::identity::ModuleOptions>(config);
}

std::unique_ptr<agora::catalog::Module> OpenCatalog(const agora::app::ServeConfig& config) {
  return OpenForCommand<agora::catalog::Module, agora::catalog::ModuleOptions>(config);
}

int AdminCreate(const agora::app::ServeConfig& config, const std::string& email, const std::string& name,
                bool password_stdin) {
  std::string password;
  if (password_stdin) {
    std::getline(std::cin, password);
  } else if (const char* env = std::getenv("AGORA_ADMIN_PASSWORD")) {
    password = env;
  } else {
    std::cerr << "agora: give the password on standard input with --password-stdin, or in AGORA_ADMIN_PASSWORD\n";
    return 2;
  }
  auto module = OpenIdentity(config);
  if (!module) return 1;
  auto user = module->service().CreateAdmin(email, password, name);
  if (!user.ok()) {
    std::cerr << "agora: cannot create the administrator: " << user.error().message << "\n";
    for (const auto& f : user.error().fields) std::cerr << "  " << f.field << ": " << f.message << "\n";
    return 1;
  }
  std::cout << user->id << "\n";
  return 0;
}

int KeysRotate(const agora::app::ServeConfig& config) {
  auto module = OpenIdentity(config);
  if (!module) return 1;
  if (auto s = module->keys()->Rotate(); !s.ok()) {
    std::cerr << "agora: " << s.error().message << "\n";
    return 1;
  }
  std::cout << module->keys()->active_kid() << "\n";
  return 0;
}

// Rebuilds the search index from the catalog; a running server switches to
// the new index by itself.
int SearchReindex(const agora::app::ServeConfig& config, agora::catalog::Module& catalog) {
  auto stats = agora::search::Reindex(config.data_dir, catalog.client());
  if (!stats.ok()) {
    std::cerr << "agora: cannot rebuild the search index: " << stats.error().message << "\n";
    return 1;
  }
  std::cout << "indexed " << stats->listings << " listings (" << stats->indexed_active << " active) in "
            << stats->seconds << " s\n";
  return 0;
}

// Creates demo sellers (seller1..N@demo.agora.example, one password) and
// `products` active listings spread over them, in batches of 1,000 per
// transaction, each with its listing.created event.
int SeedDemo(const agora::app::ServeConfig& config, int64_t products, int sellers, uint64_t seed,
             const std::string& demo_password) {
  auto identity = OpenIdentity(config);
  auto catalog = OpenCatalog(config);
  if (!identity || !catalog) return 1;
  std::vector<std::string> seller_ids;
  for (int i = 1; i <= sellers; ++i) {
    const std::string email = "seller" + std::to_string(i) + "-" + std::to_string(seed) + "@demo.agora.example";
    auto user = identity->service().Register(email, demo_password, "Demo seller " + std::to_string(i));
    if (!user.ok() && user.error().type == "email-taken") {
      std::cerr << "agora: this data was seeded with --seed " << seed << " already; pass another --seed\n";
      return 1;
    }
    if (!user.ok()) {
      std::cerr << "agora: cannot create " << email << ": " << user.error().message << "\n";
      return 1;
    }
    auto onboarded = identity->service().OnboardSeller(user->id, "Demo shop " + std::to_string(i),
                                                       {"Demo Seller", "DE89370400440532013000"});
    if (!onboarded.ok()) {
      std::cerr << "agora: cannot onboard " << email << ": " << onboarded.error().message << "\n";
      return 1;
    }
    seller_ids.push_back(user->id);
  }
  constexpr int64_t kBatch = 1000;
  const auto started = std::chrono::steady_clock::now();
  for (int64_t done = 0; done < products;) {
    const int64_t n = std::min(kBatch, products - done);
    auto inputs = agora::catalog::DemoListings(static_cast<size_t>(n), seed, static_cast<uint64_t>(done));
    const std::string& seller = seller_ids[static_cast<size_t>(done / kBatch) % seller_ids.size()];
    auto created = catalog->service().CreateListingsBulk(seller, inputs, /*publish=*/true);
    if (!created.ok()) {
      std::cerr << "agora: " << created.error().message << "\n";
      return 1;
    }
    done += n;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "seeded " << products << " listings from " << sellers << " sellers in " << seconds
            << " s (sellers log in as seller<N>-" << seed << "@demo.agora.example)\n";
  // A fresh index at once, rather than the search service replaying every
  // listing.created event on its next start.
  return SearchReindex(config, *catalog);
}

// Checks the payments ledger: 0 when it is sound, 1 when it has problems, 2
// when the database cannot be opened or read.
int LedgerVerify(const agora::app::ServeConfig& config) {
  agora::payments::ModuleOptions options;
  options.data_dir = config.data_dir;
  options.database_url = config.database_url;
  auto report = agora::payments::VerifyLedger(options);
  if (!report.ok()) {
    std::cerr << "agora: cannot check the ledger: " << report.error().message << "\n";
    return 2;
  }
  if (report->ok()) {
    std::cout << "ledger ok: " << report->transactions << " transactions, " << report->entries << " entries\n";
    return 0;
  }
  for (const auto& line : report->problems) std::cout << line << "\n";
  if (report->truncated) std::cout << "(more problems not listed)\n";
  std::cout << "ledger has problems: " << report->transactions << " transactions, " << report->entries
            << " entries\n";
  return 1;
}

// Compares the ledger with the payment provider: 0 when they agree, 1 when
// they do not (each difference listed), 2 when either cannot be read.
int LedgerReconcile(const agora::app::ServeConfig& config) {
  agora::payments::ModuleOptions options;
  options.data_dir = config.data_dir;
  options.database_url = config.database_url;
  options.provider = config.payment_provider;
  options.stripe.base_url = config.stripe_api_url;
  options.stripe.secret_key = config.stripe_secret_key;
  options.stripe.webhook_secret = config.stripe_webhook_secret;
  auto report = agora::payments::ReconcileLedger(options);
  if (!report.ok()) {
    std::cerr << "agora: cannot reconcile: " << report.error().message << "\n";
    return 2;
  }
  for (const auto& line : report->problems) std::cout << line << "\n";
  std::cout << (report->ok() ? "ledger and provider agree: " : "ledger and provider differ: ") << report->payments
            << " payments\n";
  return report->ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) {
    std::fputs("agora: libsodium failed to initialise\n", stderr);
    return 1;
  }
  CLI::App cli{"Agora: a marketplace backend. Run `agora serve` to start every service on embedded stores."};
  cli.set_version_flag("--version", std::string("agora ") + AGORA_VERSION);
  cli.require_subcommand(1);

  agora::app::ServeConfig serve_config;
  CLI::App* serve = cli.add_subcommand("serve", "Run the API gateway and the services in one process");
  agora::app::AddServeOptions(*serve, serve_config);

  agora::app::ServeConfig admin_config;
  CLI::App* admin = cli.add_subcommand("admin", "Administrator accounts");
  admin->require_subcommand(1);
  CLI::App* create = admin->add_subcommand("create", "Create an administrator account (never possible over the API)");
  agora::app::AddStoreOptions(*create, admin_config);
  std::string admin_email, admin_name = "Administrator";
  bool password_stdin = false;
  create->add_option("--email", admin_email, "Email address of the new administrator")->required();
  create->add_option("--display-name", admin_name, "Display name")->capture_default_str();
  create->add_flag("--password-stdin", password_stdin,
                   "Read the password from the first line of standard input (else AGORA_ADMIN_PASSWORD)");

  agora::app::ServeConfig keys_config;
  CLI::App* keys = cli.add_subcommand("keys", "Token signing keys");
  keys->require_subcommand(1);
  CLI::App* rotate = keys->add_subcommand(
      "rotate", "Make a new signing key active; older keys verify tokens until they expire. Restart serve to apply.");
  agora::app::AddStoreOptions(*rotate, keys_config);

  agora::app::ServeConfig routes_config;
  CLI::App* routes = cli.add_subcommand("routes", "Print every HTTP route as a JSON line (method, path, policy)");
  agora::app::AddStoreOptions(*routes, routes_config);

  agora::app::ServeConfig seed_config;
  CLI::App* seed = cli.add_subcommand(
      "seed-demo", "Create demo sellers and realistic active listings (for demos and benchmarks)");
  agora::app::AddStoreOptions(*seed, seed_config);
  int64_t seed_products = 1000;
  int seed_sellers = 20;
  uint64_t seed_value = 1;
  seed->add_option("--products", seed_products, "Number of listings to create")
      ->check(CLI::Range(int64_t{1}, int64_t{10'000'000}))
      ->capture_default_str();
  seed->add_option("--sellers", seed_sellers, "Number of demo sellers")->check(CLI::Range(1, 1000))->capture_default_str();
  seed->add_option("--seed", seed_value, "Seed of the generated data (same seed, same listings)")->capture_default_str();
  std::string seed_password = "demo-Seller-password-2026";
  seed->add_option("--password", seed_password, "Password of the demo sellers")
      ->envname("AGORA_DEMO_PASSWORD")
      ->capture_default_str();

  agora::app::ServeConfig search_config;
  CLI::App* search = cli.add_subcommand("search", "The product search index");
  search->require_subcommand(1);
  CLI::App* reindex = search->add_subcommand(
      "reindex", "Rebuild the search index from the catalog (a running server switches to it by itself)");
  agora::app::AddStoreOptions(*reindex, search_config);

  agora::app::ServeConfig ledger_config;
  CLI::App* ledger = cli.add_subcommand("ledger", "The payments ledger");
  ledger->require_subcommand(1);
  CLI::App* verify = ledger->add_subcommand(
      "verify", "Check the double-entry ledger (exit 0 only when every invariant holds; 1: problems listed)");
  agora::app::AddStoreOptions(*verify, ledger_config);
  agora::app::AddPaymentProviderOptions(*verify, ledger_config);  // accepted, so serve's settings work here too
  CLI::App* reconcile = ledger->add_subcommand(
      "reconcile", "Compare every payment's capture and refunds in the ledger with the payment provider "
                   "(exit 0 when they agree; 1: differences listed)");
  agora::app::AddStoreOptions(*reconcile, ledger_config);
  agora::app::AddPaymentProviderOptions(*reconcile, ledger_config);

  CLI11_PARSE(cli, argc, argv);

  for (auto [cmd, config] : {std::pair{serve, &serve_config}, {create, &admin_config}, {rotate, &keys_config},
                             {routes, &routes_config}, {seed, &seed_config},
                             {reindex, &search_config}, {verify, &ledger_config},
                             {reconcile, &ledger_config}}) {
    if (*cmd && !config->config_file.empty()) {
      if (auto s = agora::app::ApplyConfigFile(*cmd, config->config_file); !s.ok()) {
        std::cerr << "agora: " << s.error().message << "\n";
        return 2;
      }
    }
  }

  if (*serve) return agora::app::Serve(serve_config);
  if (*create) return AdminCreate(admin_config, admin_email, admin_name, password_stdin);
  if (*rotate) return KeysRotate(keys_config);
  if (*routes) return agora::app::PrintRoutes(routes_config);
  if (*seed) return SeedDemo(seed_config, seed_products, seed_sellers, seed_value, seed_password);
  if (*verify) return LedgerVerify(ledger_config);
  if (*reconcile) return LedgerReconcile(ledger_config);
  if (*reindex) {
    auto catalog = OpenCatalog(search_config);
    return catalog ? SearchReindex(search_config, *catalog) : 1;
  }
  return 2;
}
