// Routes: method + path pattern -> handler, with the gateway policy of each.
//
// Patterns are literal segments and `{name}` parameters: "/v1/users/{id}".
// Find() tells apart "no such path" (404) from "path exists, method not
// allowed" (405, with the Allow list). Routes are added at start-up, before
// the server runs; Find() is then safe from any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/http/message.h"

namespace agora::http {

using Handler = std::function<Response(Request&)>;

// Where a handler runs. I/O threads must never block: handlers that touch a
// database run on the blocking pool; CPU-heavy ones (password hashing) on the
// small, bounded CPU pool.
enum class Execution { kInline, kBlocking, kCpu };

struct Route {
  Method method = Method::kGet;
  std::string pattern;
  Handler handler;
  Execution execution = Execution::kBlocking;
  // Gateway policy: when `authenticated`, a valid bearer token is required
  // (401 otherwise); when `roles` is non-empty, the principal needs one of them (403).
  bool authenticated = false;
  // When not `authenticated`: a bearer token, if one is sent, is still
  // verified (401 if it is not valid) and sets the principal, so a public
  // route can show its owner more (a seller's own draft listing).
  bool optional_authentication = false;
  std::vector<std::string> roles;
  // POST/PUT/PATCH bodies must be application/json (415 otherwise).
  bool json_body = true;
  // Only a payment provider's own tokenization endpoint may receive card
  // numbers; everywhere else a body or query holding one is refused (400
  // card-data-refused) before the handler runs, and never logged.
  bool accepts_card_data = false;
  std::string summary;  // one line, for logs and docs
};

// A public route: `method pattern`, run where `execution` says.
Route MakeRoute(Method method, std::string pattern, Execution execution, Handler handler);

class Router {
 public:
  void Add(Route route);

  struct Match {
    const Route* route = nullptr;
    std::vector<std::pair<std::string, std::string>> params;
    bool path_exists = false;  // some route has this path with another method
    std::string allow;         // "GET, PATCH" when path_exists
  };
  Match Find(Method method, std::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  struct Compiled {
    std::vector<std::string> segments;  // "{x}" marks a parameter
    size_t index;
  };
  static std::vector<std::string_view> Split(std::string_view path);

  std::vector<Route> routes_;
  std::vector<Compiled> compiled_;
  struct PathHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::vector<size_t>, PathHash, std::equal_to<>> static_paths_;
};

}  // namespace agora::http
