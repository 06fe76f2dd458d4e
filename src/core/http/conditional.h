// Validators and caching headers for public GET answers (RFC 9110/9111).
#pragma once

#include <string>
#include <string_view>

#include "core/http/message.h"

namespace agora::http {

// A weak entity tag from the body's bytes: W/"<16 hex>". Cheap (not a
// cryptographic hash): equal bodies get equal tags.
std::string WeakETagOf(std::string_view body);

// Whether If-None-Match names `etag` (weak comparison, lists and "*").
bool IfNoneMatchHits(const Request& req, std::string_view etag);

// Finishes a 200 answer to a GET: sets ETag (`etag`, or a weak tag of the
// body when empty) and Cache-Control, and replaces it with a bodiless 304
// when the request's If-None-Match names that tag.
Response Conditional(const Request& req, Response response, std::string_view cache_control, std::string etag = {});

}  // namespace agora::http
