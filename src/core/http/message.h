// HTTP request and response as plain values, free of Boost.Beast.
//
// Services see only these types: the server (server.cc) converts from and to
// Beast messages. Header names compare case-insensitively.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

namespace agora::http {

struct Route;

enum class Method { kGet, kHead, kPost, kPut, kPatch, kDelete, kOptions, kOther };

Method ParseMethod(std::string_view name);
std::string_view MethodName(Method m);

bool IEquals(std::string_view a, std::string_view b);

class Headers {
 public:
  // The first value of `name`, or nullopt.
  std::optional<std::string_view> Get(std::string_view name) const;
  // Replaces every value of `name` with `value`.
  void Set(std::string_view name, std::string value);
  void Add(std::string name, std::string value);
  void Reserve(size_t n) { items_.reserve(n); }
  bool Has(std::string_view name) const { return Get(name).has_value(); }
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// Who made the request, established by the gateway from a verified access token.
struct Principal {
  std::string user_id;
  std::vector<std::string> roles;
  std::string token_id;  // `jti` of the access token
  int64_t expires_at = 0;

  bool HasRole(std::string_view role) const;
};

struct Request {
  Method method = Method::kGet;
  std::string method_name;
  std::string target;  // as received: path and query
  std::string path;    // percent-decoded path, no query
  std::string query;   // raw query string, without '?'
  Headers headers;
  std::string body;
  std::string remote_ip;  // the TCP peer
  // The client's address: remote_ip, or, when the peer is a trusted proxy,
  // the nearest untrusted address in X-Forwarded-For. Set by the pipeline;
  // use it for per-client limits and logs.
  std::string client_ip;
  bool tls = false;

  // Set by the pipeline.
  std::string request_id;
  std::string trace_id;    // W3C trace id (32 hex), from `traceparent` or new
  std::string span_id;     // this server's span (16 hex)
  std::string_view route;  // matched route pattern ("/v1/users/{id}"), owned by the App; "" if none
  const Route* matched_route = nullptr;
  std::vector<std::pair<std::string, std::string>> path_params;
  std::optional<Principal> principal;

  // The value of path parameter `name` ("" if absent).
  std::string_view PathParam(std::string_view name) const;
  // The first value of query parameter `name`, percent-decoded.
  std::optional<std::string> QueryParam(std::string_view name) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;

  // `value` serialized as application/json.
  static Response Json(int status, const boost::json::value& value);
  // An empty response (204 and the like).
  static Response Empty(int status);
  static Response Text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
};

// The query string as (name, value) pairs in order, percent-decoded ('+' is
// a space); nullopt when an escape is malformed. "a&b=" gives ("a",""), ("b","").
std::optional<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query);

// Decodes %XX and (when `plus_is_space`) '+'; nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space);

}  // namespace agora::http
