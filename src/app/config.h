// Settings of `agora serve`, from flags over AGORA_* environment variables
// over an optional TOML file (--config / AGORA_CONFIG). Every setting has a
// default, so `agora serve` with none of them works.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace CLI {
class App;
}

namespace agora::app {

struct ServeConfig {
  std::string config_file;  // TOML; settings a flag or AGORA_* variable did not set
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./data";
  std::string database_url;  // empty: SQLite files in data_dir
  std::string services = "all";
  std::string tls_cert;
  std::string tls_key;
  std::string public_url;  // token issuer and links in mails; empty: http(s)://<listen>
  std::vector<std::string> cors_origins;
  std::vector<std::string> trusted_proxies;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  int read_timeout_s = 30;
  int idle_timeout_s = 60;
  size_t max_connections = 10000;
  int shutdown_grace_s = 10;
  int io_threads = 0;
  int blocking_threads = 8;
  int cpu_threads = 0;
  size_t max_pending_jobs = 256;
  // Memory for cached search answers and facet counts (0 turns caching off).
  size_t search_cache_mb = 32;
  std::string log_level = "info";
  bool access_log = true;
  int access_token_ttl_s = 900;
  int refresh_token_ttl_s = 30 * 24 * 3600;
  int login_max_failures = 5;                 // free failures before delays grow
  // Orders and payments.
  int checkout_payment_timeout_s = 900;   // unpaid checkouts are cancelled after this
  double order_auto_delivery_days = 14;   // shipped orders count as delivered after this
  double order_dispute_window_days = 3;   // delivered orders complete (escrow released) after this
  int commission_bps = 1000;              // platform commission, basis points
  std::string commission_category_bps;    // "cat_id=bps,..." per-category rates
  std::string payment_capture = "automatic";  // or "manual": authorize, then capture
  int payout_interval_s = 86400;          // seller payouts run this often (0: on admin request only)
  std::string payment_provider = "sandbox";  // or "stripe"
  std::string stripe_api_url = "https://api.stripe.com";
  std::string stripe_secret_key;
  std::string stripe_webhook_secret;
};

// Registers the payment provider settings (serve and the ledger commands).
void AddPaymentProviderOptions(CLI::App& cmd, ServeConfig& config);

// Registers --config, --data-dir and --database-url (the admin commands need only these).
void AddStoreOptions(CLI::App& cmd, ServeConfig& config);

// Registers every serve setting on `cmd` with its flag, env name and help.
void AddServeOptions(CLI::App& cmd, ServeConfig& config);

// Applies the TOML file at `path` to the options of `cmd` that neither a flag
// nor an environment variable set. Unknown keys and bad values are refused
// (kInvalidArgument, with a message naming the key).
Status ApplyConfigFile(CLI::App& cmd, const std::string& path);

// Splits "host:port"; false when malformed.
bool SplitHostPort(const std::string& listen, std::string& host, uint16_t& port);

}  // namespace agora::app
