#include "app/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <CLI/CLI.hpp>

namespace agora::app {

namespace {
template <class T>
CLI::Option* Opt(CLI::App& cmd, const char* flag, T& value, const char* env, const char* help) {
  return cmd.add_option(flag, value, help)->envname(env)->capture_default_str();
}
}  // namespace

void AddStoreOptions(CLI::App& cmd, ServeConfig& c) {
  // Not CLI11's set_config: it reads the file before the environment, and
  // we want flags over environment over file.
  cmd.add_option("--config", c.config_file, "Read settings from this TOML file (keys as the long flag names)")
      ->envname("AGORA_CONFIG");
  Opt(cmd, "--data-dir", c.data_dir, "AGORA_DATA_DIR", "Folder for SQLite files, keys and the development mailbox");
  Opt(cmd, "--database-url", c.database_url, "AGORA_DATABASE_URL",
      "postgresql://... to use PostgreSQL (a schema per service) instead of SQLite");
}

void AddPaymentProviderOptions(CLI::App& cmd, ServeConfig& c) {
  Opt(cmd, "--payment-provider", c.payment_provider, "AGORA_PAYMENT_PROVIDER",
      "sandbox (the built-in test gateway, with its /sandbox routes) or stripe")
      ->check(CLI::IsMember({"sandbox", "stripe"}));
  Opt(cmd, "--stripe-api-url", c.stripe_api_url, "AGORA_STRIPE_API_URL", "Stripe's API base URL");
  cmd.add_option("--stripe-secret-key", c.stripe_secret_key, "Stripe secret key (sk_...), for --payment-provider stripe")
      ->envname("AGORA_STRIPE_SECRET_KEY");
  cmd.add_option("--stripe-webhook-secret", c.stripe_webhook_secret,
                 "Signing secret (whsec_...) of the Stripe webhook endpoint /v1/payments/webhooks/stripe")
      ->envname("AGORA_STRIPE_WEBHOOK_SECRET");
}

void AddServeOptions(CLI::App& cmd, ServeConfig& c) {
  AddStoreOptions(cmd, c);
  AddPaymentProviderOptions(cmd, c);
  auto opt = [&](const char* flag, auto& value, const char* env, const char* help) {
    return Opt(cmd, flag, value, env, help);
  };
  opt("--listen", c.listen, "AGORA_LISTEN", "Address and port to listen on (port 0 picks a free one)");
  opt("--services", c.services, "AGORA_SERVICES", "Comma-separated services to run, or all");
  opt("--tls-cert", c.tls_cert, "AGORA_TLS_CERT", "PEM certificate chain; with --tls-key serves HTTPS");
  opt("--tls-key", c.tls_key, "AGORA_TLS_KEY", "PEM private key for --tls-cert");
  opt("--public-url", c.public_url, "AGORA_PUBLIC_URL",
      "External base URL: token issuer and links in mails (default http(s)://<listen>)");
  cmd.add_option("--cors-origin", c.cors_origins, "Browser origin allowed to call the API (repeatable, * for any)")
      ->envname("AGORA_CORS_ORIGINS")
      ->delimiter(',');
  cmd.add_option("--trusted-proxy", c.trusted_proxies,
                 "IP address of a reverse proxy whose X-Forwarded-For names the client (repeatable)")
      ->envname("AGORA_TRUSTED_PROXIES")
      ->delimiter(',')
      ->check(CLI::Validator(
          [](std::string& s) {
            unsigned char buf[sizeof(in6_addr)];
            const bool ip = inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
            return ip ? std::string() : "'" + s + "' is not an IP address";
          },
          "IP"));
  opt("--max-header-bytes", c.max_header_bytes, "AGORA_MAX_HEADER_BYTES", "Largest request header block (431 above)")
      ->check(CLI::Range(1024, 1024 * 1024));
  opt("--max-body-bytes", c.max_body_bytes, "AGORA_MAX_BODY_BYTES", "Largest request body (413 above)")
      ->check(CLI::Range(1024, 64 * 1024 * 1024));
  opt("--read-timeout", c.read_timeout_s, "AGORA_READ_TIMEOUT", "Seconds to read one request")->check(CLI::Range(1, 3600));
  opt("--idle-timeout", c.idle_timeout_s, "AGORA_IDLE_TIMEOUT", "Seconds a keep-alive connection may idle")
      ->check(CLI::Range(1, 3600));
  opt("--max-connections", c.max_connections, "AGORA_MAX_CONNECTIONS", "Open connections beyond this are closed")
      ->check(CLI::Range(1, 1000000));
  opt("--shutdown-grace", c.shutdown_grace_s, "AGORA_SHUTDOWN_GRACE",
      "Seconds in-flight requests get to finish on SIGTERM/SIGINT")
      ->check(CLI::Range(0, 600));
  opt("--io-threads", c.io_threads, "AGORA_IO_THREADS", "Network threads (0: one per core)")->check(CLI::Range(0, 256));
  opt("--blocking-threads", c.blocking_threads, "AGORA_BLOCKING_THREADS", "Threads for handlers that wait on a database")
      ->check(CLI::Range(1, 256));
  opt("--cpu-threads", c.cpu_threads, "AGORA_CPU_THREADS", "Threads for password hashing (0: one per core but one, at least 1)")
      ->check(CLI::Range(0, 256));
  opt("--max-pending-jobs", c.max_pending_jobs, "AGORA_MAX_PENDING_JOBS",
      "Jobs a worker pool may hold, queued or running; beyond it requests get 503 with Retry-After")
      ->check(CLI::Range(1, 100000));
  opt("--search-cache-mb", c.search_cache_mb, "AGORA_SEARCH_CACHE_MB",
      "Memory for cached search answers and facet counts, per index revision (0: no cache)")
      ->check(CLI::Range(0, 4096));
  opt("--log-level", c.log_level, "AGORA_LOG_LEVEL", "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  opt("--access-log", c.access_log, "AGORA_ACCESS_LOG", "Log every request as a JSON line");
  opt("--access-token-ttl", c.access_token_ttl_s, "AGORA_ACCESS_TOKEN_TTL", "Access token lifetime in seconds")
      ->check(CLI::Range(30, 24 * 3600));
  opt("--refresh-token-ttl", c.refresh_token_ttl_s, "AGORA_REFRESH_TOKEN_TTL", "Refresh token lifetime in seconds")
      ->check(CLI::Range(60, 365 * 24 * 3600));
  opt("--login-max-failures", c.login_max_failures, "AGORA_LOGIN_MAX_FAILURES",
      "Failed logins per account or IP before each further try waits longer")
      ->check(CLI::Range(1, 1000));
  opt("--checkout-payment-timeout", c.checkout_payment_timeout_s, "AGORA_CHECKOUT_PAYMENT_TIMEOUT",
      "Seconds a checkout may stay unpaid before its orders are cancelled and the stock released "
      "(at most 6600: the catalog holds stock for at most 2 h, and the hold outlives the timeout by 10 min)")
      ->check(CLI::Range(5, 6600));
  opt("--order-auto-delivery-days", c.order_auto_delivery_days, "AGORA_ORDER_AUTO_DELIVERY_DAYS",
      "Days after shipping when an order counts as delivered unless the buyer confirmed or disputed")
      ->check(CLI::Range(0.0, 365.0));
  opt("--order-dispute-window-days", c.order_dispute_window_days, "AGORA_ORDER_DISPUTE_WINDOW_DAYS",
      "Days after delivery the buyer may dispute; then the order completes and escrow is released (0: at once)")
      ->check(CLI::Range(0.0, 365.0));
  opt("--commission-bps", c.commission_bps, "AGORA_COMMISSION_BPS",
      "Platform commission in basis points of each order (1000 = 10 %)")
      ->check(CLI::Range(0, 10000));
  opt("--commission-category-bps", c.commission_category_bps, "AGORA_COMMISSION_CATEGORY_BPS",
      "Per-category commission, category_id=bps,... (applies to the category and its descendants)");
  opt("--payment-capture", c.payment_capture, "AGORA_PAYMENT_CAPTURE",
      "automatic (charge at checkout) or manual (authorize at checkout, capture once confirmed)")
      ->check(CLI::IsMember({"automatic", "manual"}));
  opt("--payout-interval", c.payout_interval_s, "AGORA_PAYOUT_INTERVAL",
      "Seconds between seller payout runs (0: only when an admin asks)")
      ->check(CLI::Range(0, 30 * 24 * 3600));
}

Status ApplyConfigFile(CLI::App& cmd, const std::string& path) {
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(path);
  } catch (const CLI::Error& e) {
    return Error::InvalidArgument("cannot read the config file " + path + ": " + e.what());
  }
  for (const auto& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // section markers
    const std::string key = item.fullname();
    CLI::Option* opt = nullptr;
    try {
      opt = key == "config" ? nullptr : cmd.get_option("--" + key);
    } catch (const CLI::OptionNotFound&) {
      opt = nullptr;
    }
    if (opt == nullptr) return Error::InvalidArgument("unknown setting '" + key + "' in " + path);
    if (opt->count() > 0) continue;  // a flag or an environment variable set it
    try {
      for (const auto& v : item.inputs) opt->add_result(v);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      return Error::InvalidArgument("setting '" + key + "' in " + path + ": " + e.what());
    }
  }
  return Ok();
}

bool SplitHostPort(const std::string& listen, std::string& host, uint16_t& port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string p = listen.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  int v = std::stoi(p);
  if (v > 65535) return false;
  port = static_cast<uint16_t>(v);
  return true;
}

}  // namespace agora::app
