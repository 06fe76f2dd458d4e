#include "core/http/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <optional>

#include "core/http/message.h"

namespace agora::http {
namespace {

// curl_global_init is not thread-safe and must run before any easy handle;
// it is never undone (the process keeps libcurl until exit).
void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// A header line must not smuggle another header or a second request.
bool HasLineBreak(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

// The host of an http(s) URL, or nullopt when `url` is not one.
std::optional<std::string> HttpHost(const std::string& url) {
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return std::nullopt;
  char* scheme = nullptr;
  if (curl_url_get(u.get(), CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) return std::nullopt;
  std::string s = Lower(scheme);
  curl_free(scheme);
  if (s != "http" && s != "https") return std::nullopt;
  char* host = nullptr;
  if (curl_url_get(u.get(), CURLUPART_HOST, &host, 0) != CURLUE_OK) return std::nullopt;
  std::string h = host;
  curl_free(host);
  return h;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// Called once per header line, status lines included. A new status line
// (after a 1xx interim answer) starts the header list afresh, so only the
// final response's headers are kept.
size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::vector<std::pair<std::string, std::string>>*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    headers->clear();
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    headers->emplace_back(Lower(Trim(line.substr(0, colon))), std::string(Trim(line.substr(colon + 1))));
  }
  return size * n;
}

}  // namespace

std::string ClientResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return v;
  }
  return "";
}

Result<ClientResponse> Send(const ClientRequest& request) {
  InitCurlOnce();
  std::optional<std::string> host = HttpHost(request.url);
  if (!host) return Error::InvalidArgument("Not an http(s) URL");
  if (request.method.empty() || HasLineBreak(request.method)) return Error::InvalidArgument("Bad HTTP method");

  // One handle per thread, reset between requests: curl_easy_reset keeps
  // the handle's open connections, so calls to the same host reuse them
  // (keep-alive) instead of connecting afresh each time.
  thread_local std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) return Error::Internal("curl_easy_init failed");
  CURL* h = easy.get();
  curl_easy_reset(h);

  std::unique_ptr<curl_slist, SlistDeleter> header_list;
  auto add_header = [&header_list](const std::string& line) {
    curl_slist* next = curl_slist_append(header_list.get(), line.c_str());
    if (next != nullptr) {
      (void)header_list.release();
      header_list.reset(next);
    }
  };
  bool has_content_type = false;
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || HasLineBreak(name) || HasLineBreak(value) || name.find(':') != std::string::npos) {
      return Error::InvalidArgument("Bad request header");
    }
    if (IEquals(name, "Content-Type")) has_content_type = true;
    // "Name;" is curl's way to send a header with an empty value.
    add_header(value.empty() ? name + ";" : name + ": " + value);
  }
  // No "Expect: 100-continue" round trip before larger bodies.
  add_header("Expect:");

  const bool has_body = !request.body.empty() || request.method == "POST" || request.method == "PUT" ||
                        request.method == "PATCH";
  if (has_body && !has_content_type) {
    // Otherwise curl labels the body application/x-www-form-urlencoded.
    add_header("Content-Type:");
  }

  ClientResponse response;
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  // Resolver timeouts would otherwise use signals, which are not thread-safe.
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "agora/0.1");
  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    if (has_body) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    }
    if (request.method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.headers);

  CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Error::Unavailable("No answer from " + *host + " within " + std::to_string(request.timeout.count()) +
                              " ms")
        .WithType("http-timeout");
  }
  if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
    return Error::InvalidArgument("Not an http(s) URL");
  }
  if (rc != CURLE_OK) {
    // Refused, unresolvable, reset, TLS failure...: curl's text names the
    // cause and the host, never the body.
    return Error::Unavailable("Cannot reach " + *host + ": " + curl_easy_strerror(rc)).WithType("http-unreachable");
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  return response;
}

}  // namespace agora::http
