#include "core/http/conditional.h"

#include <cstdint>
#include <functional>

#include <fmt/format.h>

namespace agora::http {

std::string WeakETagOf(std::string_view body) {
  // libstdc++'s std::hash for strings (MurmurHash2, 8 bytes a step: ~1 µs
  // for a 15 KB page, where a byte-wise FNV cost ~12 µs). A validator, not a
  // security boundary; stable for a given build.
  return fmt::format("W/\"{:016x}\"", static_cast<uint64_t>(std::hash<std::string_view>{}(body)));
}

bool IfNoneMatchHits(const Request& req, std::string_view etag) {
  auto h = req.headers.Get("If-None-Match");
  if (!h) return false;
  std::string_view v = *h;
  if (v.find('*') != std::string_view::npos) return true;
  // A list of (possibly weak) tags; GET compares weakly (RFC 9110 13.1.2).
  std::string_view bare = etag.substr(0, 2) == "W/" ? etag.substr(2) : etag;
  size_t pos = 0;
  while ((pos = v.find(bare, pos)) != std::string_view::npos) {
    const size_t end = pos + bare.size();
    const bool left_ok = pos == 0 || v[pos - 1] == ' ' || v[pos - 1] == ',' || v[pos - 1] == '/';
    const bool right_ok = end == v.size() || v[end] == ' ' || v[end] == ',';
    if (left_ok && right_ok) return true;
    pos = end;
  }
  return false;
}

Response Conditional(const Request& req, Response response, std::string_view cache_control, std::string etag) {
  if (etag.empty()) etag = WeakETagOf(response.body);
  if (IfNoneMatchHits(req, etag)) {
    Response not_modified = Response::Empty(304);
    not_modified.headers.Set("ETag", std::move(etag));
    not_modified.headers.Set("Cache-Control", std::string(cache_control));
    return not_modified;
  }
  response.headers.Set("ETag", std::move(etag));
  response.headers.Set("Cache-Control", std::string(cache_control));
  return response;
}

}  // namespace agora::http
