#include "core/http/app.h"

#include <array>
#include <atomic>
#include <exception>
#include <random>

#include <fmt/format.h>

#include "core/card_scan.h"
#include "core/http/problem.h"
#include "core/log.h"

namespace agora::http {
namespace {

// Request and span ids need to be unique, not secret: a per-thread
// SplitMix64 sequence seeded from the OS is plenty, and cheap.
uint64_t NextRandom() {
  thread_local uint64_t state = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string RandomHex(size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(bytes * 2, '0');
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t v = NextRandom();
    for (size_t j = 0; j < 8 && i + j < bytes; ++j) {
      out[2 * (i + j)] = kHex[(v >> 4) & 0xf];
      out[2 * (i + j) + 1] = kHex[v & 0xf];
      v >>= 8;
    }
  }
  return out;
}

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool SaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  }
  return true;
}

// W3C traceparent: version-traceid-parentid-flags, "00-<32>-<16>-<2>".
bool ParseTraceparent(std::string_view tp, std::string& trace_id) {
  if (tp.size() != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return false;
  std::string_view version = tp.substr(0, 2), trace = tp.substr(3, 32), parent = tp.substr(36, 16),
                   flags = tp.substr(53, 2);
  if (!IsHex(version) || version == "ff" || !IsHex(trace) || !IsHex(parent) || !IsHex(flags)) return false;
  if (trace == std::string(32, '0') || parent == std::string(16, '0')) return false;
  trace_id = trace;
  return true;
}

bool IsJsonContentType(std::string_view ct) {
  auto semi = ct.find(';');
  std::string_view media = ct.substr(0, semi);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  return IEquals(media, "application/json");
}

// Whether the body or the (decoded) query string holds a card number.
bool CarriesCardNumber(const Request& req) {
  if (!req.body.empty() && ContainsCardNumber(req.body)) return true;
  if (req.query.empty()) return false;
  auto decoded = PercentDecode(req.query, true);
  return ContainsCardNumber(decoded ? std::string_view(*decoded) : std::string_view(req.query));
}

}  // namespace

struct App::RouteStats {
  std::string label;
  metrics::Histogram* latency = nullptr;
  std::array<std::atomic<uint64_t>, 600> by_status{};
};

App::App(AppOptions options, metrics::Registry& registry) : options_(std::move(options)), registry_(registry) {
  fixed_headers_ =
      "X-Content-Type-Options: nosniff\r\n"
      "X-Frame-Options: DENY\r\n"
      "Referrer-Policy: no-referrer\r\n"
      "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n";
  fixed_headers_tls_ = fixed_headers_ + "Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n";
  registry_.AddCollector([this](std::string& out) {
    out += "# HELP agora_http_requests_total HTTP requests by route, method and status.\n";
    out += "# TYPE agora_http_requests_total counter\n";
    for (const auto& s : stats_) {
      for (size_t code = 100; code < s->by_status.size(); ++code) {
        uint64_t n = s->by_status[code].load(std::memory_order_relaxed);
        if (n != 0) out += fmt::format("agora_http_requests_total{{{},status=\"{}\"}} {}\n", s->label, code, n);
      }
    }
  });
  // The last slot counts requests that matched no route.
  auto unmatched = std::make_unique<RouteStats>();
  unmatched->label = R"(route="unmatched",method="")";
  unmatched->latency = &registry_.NewHistogram("agora_http_request_duration_seconds",
                                               "Time from request read to response ready, by route.",
                                               unmatched->label);
  stats_.push_back(std::move(unmatched));
}

App::~App() = default;

void App::Add(Route route) {
  auto s = std::make_unique<RouteStats>();
  s->label = fmt::format(R"(route="{}",method="{}")", metrics::EscapeLabel(route.pattern), MethodName(route.method));
  s->latency = &registry_.NewHistogram("agora_http_request_duration_seconds",
                                       "Time from request read to response ready, by route.", s->label);
  // Keep the unmatched slot last.
  stats_.insert(stats_.end() - 1, std::move(s));
  router_.Add(std::move(route));
}

App::RouteStats& App::StatsFor(const Route* route) {
  if (route == nullptr) return *stats_.back();
  return *stats_[static_cast<size_t>(route - router_.routes().data())];
}

bool App::OriginAllowed(std::string_view origin) const {
  for (const auto& o : options_.cors_origins) {
    if (o == "*" || o == origin) return true;
  }
  return false;
}

void App::AddCorsHeaders(const Request& req, Response& res) const {
  auto origin = req.headers.Get("Origin");
  if (!origin || !OriginAllowed(*origin)) return;
  res.headers.Set("Access-Control-Allow-Origin", std::string(*origin));
  res.headers.Set("Vary", "Origin");
  res.headers.Set("Access-Control-Expose-Headers",
                  "X-Request-Id, traceparent, ETag, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset");
}

bool App::Trusted(std::string_view ip) const {
  for (const auto& p : options_.trusted_proxies) {
    if (p == ip) return true;
  }
  return false;
}

std::string App::ClientIp(const Request& req) const {
  if (options_.trusted_proxies.empty() || !Trusted(req.remote_ip)) return req.remote_ip;
  auto xff = req.headers.Get("X-Forwarded-For");
  if (!xff) return req.remote_ip;
  // Right to left: each trusted hop appended the address it saw.
  std::string_view rest = *xff;
  while (!rest.empty()) {
    auto comma = rest.rfind(',');
    std::string_view hop = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    while (!hop.empty() && hop.front() == ' ') hop.remove_prefix(1);
    while (!hop.empty() && hop.back() == ' ') hop.remove_suffix(1);
    if (hop.empty() || hop.size() > 45 || hop.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) {
      return req.remote_ip;  // not an address: believe nothing
    }
    if (!Trusted(hop)) return std::string(hop);
  }
  return req.remote_ip;
}

App::Dispatch App::Begin(Request& req) {
  Dispatch d;
  req.client_ip = ClientIp(req);
  if (auto id = req.headers.Get("X-Request-Id"); id && SaneRequestId(*id)) {
    req.request_id = std::string(*id);
  } else {
    req.request_id = RandomHex(16);
  }
  if (auto tp = req.headers.Get("traceparent"); !tp || !ParseTraceparent(*tp, req.trace_id)) {
    req.trace_id = RandomHex(16);
  }
  req.span_id = RandomHex(8);

  // CORS preflight.
  if (req.method == Method::kOptions && req.headers.Has("Access-Control-Request-Method")) {
    auto origin = req.headers.Get("Origin");
    if (!origin || !OriginAllowed(*origin)) {
      d.immediate = Problem(403, "cors-origin-refused", "Origin not allowed", "This origin may not call the API");
      return d;
    }
    Response r = Response::Empty(204);
    r.headers.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
    r.headers.Set("Access-Control-Allow-Headers",
                  "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, X-Request-Id, traceparent");
    r.headers.Set("Access-Control-Max-Age", "600");
    d.immediate = std::move(r);
    return d;
  }

  auto match = router_.Find(req.method, req.path);
  if (match.route == nullptr) {
    if (match.path_exists) {
      Response r = Problem(405, "method-not-allowed", "Method not allowed",
                           fmt::format("{} is not allowed here; allowed: {}", req.method_name, match.allow));
      r.headers.Set("Allow", match.allow);
      d.immediate = std::move(r);
    } else {
      d.immediate = Problem(404, "route-not-found", "Not found", "No such endpoint");
    }
    return d;
  }
  const Route& route = *match.route;
  req.route = route.pattern;
  req.matched_route = &route;
  req.path_params = std::move(match.params);

  auto authz = route.authenticated || route.optional_authentication ? req.headers.Get("Authorization")
                                                                     : std::optional<std::string_view>();
  if (route.authenticated || (authz && auth_)) {
    std::string_view token;
    if (authz && authz->size() > 7 && IEquals(authz->substr(0, 7), "Bearer ")) token = authz->substr(7);
    Result<Principal> p = token.empty() || !auth_ ? Result<Principal>(Error::Unauthenticated("A bearer token is required"))
                                                  : auth_->Authenticate(token);
    if (!p.ok()) {
      Response r = ProblemFrom(p.error());
      r.headers.Set("WWW-Authenticate", token.empty() ? "Bearer" : "Bearer error=\"invalid_token\"");
      d.immediate = std::move(r);
      return d;
    }
    req.principal = std::move(*p);
    if (!route.roles.empty()) {
      bool allowed = false;
      for (const auto& role : route.roles) allowed = allowed || req.principal->HasRole(role);
      if (!allowed) {
        d.immediate = Problem(403, "permission-denied", "Not allowed", "Your role may not use this endpoint");
        return d;
      }
    }
  }
  // After authentication: a caller without a valid token learns nothing
  // about what the route accepts.
  const bool has_body_method =
      req.method == Method::kPost || req.method == Method::kPut || req.method == Method::kPatch;
  if (route.json_body && has_body_method && !req.body.empty()) {
    auto ct = req.headers.Get("Content-Type");
    if (!ct || !IsJsonContentType(*ct)) {
      d.immediate = Problem(415, "unsupported-media-type", "Unsupported media type",
                            "The body must be application/json");
      return d;
    }
  }
  if (!route.accepts_card_data && CarriesCardNumber(req)) {
    d.immediate = Problem(400, "card-data-refused", "Card data is not accepted",
                          "Card numbers go to the payment provider's tokenization endpoint, never to this API; "
                          "send the token it returns");
    return d;
  }
  d.route = &route;
  return d;
}

Response App::Run(const Route& route, Request& req) {
  try {
    return route.handler(req);
  } catch (const std::exception& e) {
    log::Error("handler threw", {{"request_id", req.request_id}, {"route", route.pattern}, {"error", e.what()}});
  } catch (...) {
    log::Error("handler threw", {{"request_id", req.request_id}, {"route", route.pattern}});
  }
  return Problem(500, "internal", "Internal error", "");
}

void App::Finish(const Request& req, Response& res, std::chrono::nanoseconds elapsed) {
  auto& h = res.headers;
  h.Add("X-Request-Id", req.request_id);
  std::string traceparent;
  traceparent.reserve(55);
  traceparent += "00-";
  traceparent += req.trace_id;
  traceparent += '-';
  traceparent += req.span_id;
  traceparent += "-01";
  h.Add("traceparent", std::move(traceparent));
  if (!h.Has("Cache-Control")) h.Add("Cache-Control", "no-store");
  if (!options_.cors_origins.empty()) AddCorsHeaders(req, res);

  RouteStats& s = StatsFor(req.matched_route);
  s.latency->ObserveNanos(static_cast<uint64_t>(elapsed.count()));
  if (res.status >= 100 && res.status < 600) s.by_status[res.status].fetch_add(1, std::memory_order_relaxed);

  if (options_.access_log && log::Enabled(log::Level::kInfo)) {
    // Formatted by hand: this runs on every request.
    std::string line;
    line.reserve(320);
    line += "{\"ts\":";
    log::AppendNow(line);
    line += ",\"level\":\"info\",\"msg\":\"request\",\"request_id\":";
    log::AppendJsonString(line, req.request_id);
    line += ",\"trace_id\":";
    log::AppendJsonString(line, req.trace_id);
    line += ",\"method\":";
    log::AppendJsonString(line, req.method_name);
    line += ",\"path\":";
    // A card number typed into a URL must not reach the logs either.
    log::AppendJsonString(line, ContainsCardNumber(req.path) ? std::string_view("[redacted: card number]")
                                                             : std::string_view(req.path));
    line += ",\"route\":";
    log::AppendJsonString(line, req.route);
    const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    line += ",\"status\":";
    line += std::to_string(res.status);
    line += ",\"duration_ms\":";  // microsecond precision without float formatting
    line += std::to_string(us / 1000);
    line += '.';
    const int64_t frac = us % 1000;
    line.push_back(static_cast<char>('0' + frac / 100));
    line.push_back(static_cast<char>('0' + frac / 10 % 10));
    line.push_back(static_cast<char>('0' + frac % 10));
    line += ",\"client_ip\":";
    log::AppendJsonString(line, req.client_ip);
    if (req.principal) {
      line += ",\"user_id\":";
      log::AppendJsonString(line, req.principal->user_id);
    }
    line += "}";
    log::WriteLine(log::Level::kInfo, std::move(line));
  }
}

}  // namespace agora::http
