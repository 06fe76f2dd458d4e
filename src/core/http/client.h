// A small blocking HTTP/1.1 client (libcurl) for calls to other services and
// providers: webhook deliveries, the Stripe API. One request per call; each
// thread has its own easy handle, so it is thread-safe, and a thread's calls
// to one host reuse their kept-alive connection. Only http:// and https://
// URLs; redirects are not followed.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace agora::http {

struct ClientRequest {
  std::string method = "POST";  // GET, POST, DELETE, ...
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // The whole exchange, connecting included.
  std::chrono::milliseconds timeout{10000};
};

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  // The first header named `name` (case-insensitive), or "".
  std::string Header(std::string_view name) const;
};

// Sends `request`. Any HTTP status is a response (the caller decides what a
// 4xx or 5xx means). kUnavailable (type "http-timeout" when the timeout
// passed, "http-unreachable" otherwise) when no response arrived; the message
// names the host, never the body. kInvalidArgument for a URL that is not
// http(s).
[[nodiscard]] Result<ClientResponse> Send(const ClientRequest& request);

}  // namespace agora::http
