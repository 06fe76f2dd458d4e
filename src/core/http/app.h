// The gateway pipeline around every handler, free of Beast and Asio.
//
// Before the handler (Begin): request id, W3C trace context, CORS preflight,
// routing (404/405), bearer-token authentication (401), role policy (403)
// and content type (415). After it (Finish): security and CORS headers,
// request id and traceparent echo, per-route metrics and the JSON access log.
// The server calls Begin, runs the route's handler where its Execution says
// (Run), then Finish. All methods are thread-safe once routes are added.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/http/message.h"
#include "core/http/router.h"
#include "core/metrics.h"
#include "core/result.h"

namespace agora::http {

// Turns a bearer token into a principal; the identity module provides one.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // kUnauthenticated with a client-safe message when the token is not valid.
  virtual Result<Principal> Authenticate(std::string_view bearer_token) = 0;
};

struct AppOptions {
  // Origins allowed to call the API from a browser ("*" for any); empty: no CORS.
  std::vector<std::string> cors_origins;
  bool access_log = true;
  // Peers (exact IP addresses, e.g. the nginx in front) whose
  // X-Forwarded-For is believed. Empty: the header is ignored.
  std::vector<std::string> trusted_proxies;
};

class App {
 public:
  App(AppOptions options, metrics::Registry& registry);
  ~App();

  // Routes must be added before the first request.
  void Add(Route route);
  const Router& router() const { return router_; }
  void SetAuthenticator(std::shared_ptr<Authenticator> auth) { auth_ = std::move(auth); }

  struct Dispatch {
    std::optional<Response> immediate;  // answer at once (error, preflight)
    const Route* route = nullptr;       // otherwise run this route
  };
  Dispatch Begin(Request& req);
  // Calls the handler; a stray exception becomes a 500 problem and is logged.
  Response Run(const Route& route, Request& req);
  void Finish(const Request& req, Response& res, std::chrono::nanoseconds elapsed);

  // Security headers every response carries, pre-rendered as header lines
  // ("Name: value\r\n..."), for the server to write after the response's
  // own headers. `tls` adds Strict-Transport-Security.
  const std::string& FixedHeaders(bool tls) const { return tls ? fixed_headers_tls_ : fixed_headers_; }

 private:
  struct RouteStats;
  RouteStats& StatsFor(const Route* route);
  void AddCorsHeaders(const Request& req, Response& res) const;
  bool OriginAllowed(std::string_view origin) const;
  bool Trusted(std::string_view ip) const;
  std::string ClientIp(const Request& req) const;

  AppOptions options_;
  metrics::Registry& registry_;
  Router router_;
  std::shared_ptr<Authenticator> auth_;
  std::vector<std::unique_ptr<RouteStats>> stats_;  // one per route, then one for unmatched
  std::string fixed_headers_;
  std::string fixed_headers_tls_;
};

}  // namespace agora::http
