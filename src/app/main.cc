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
#include "services/identity/module.h"

namespace {

// Opens the identity service on the configured store for an operator
// command; prints why not and returns null on failure.
std::unique_ptr<agora::identity::Module> OpenIdentity(const agora::app::ServeConfig& config) {
  agora::identity::ModuleOptions options;
  options.data_dir = config.data_dir;
  options.database_url = config.database_url;
  auto module = agora::identity::Module::Open(options, agora::SystemClock::Instance());
  if (!module.ok()) {
    std::cerr << "agora: " << module.error().message << "\n";
    return nullptr;
  }
  return std::move(*module);
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

  CLI11_PARSE(cli, argc, argv);

  for (auto [cmd, config] : {std::pair{serve, &serve_config}, {create, &admin_config}, {rotate, &keys_config},
                             {routes, &routes_config}}) {
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
  return 2;
}
