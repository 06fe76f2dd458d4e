// RFC 9457 problem responses: the one place that maps Error codes to HTTP.
//
// Every error answer of the API is `application/problem+json` with a stable
// `type` ("/problems/<slug>"), `title`, `status`, `detail` and, for
// validation errors, `errors: [{field, message}]`.
#pragma once

#include <string_view>

#include "core/http/message.h"
#include "core/result.h"

namespace agora::http {

// The HTTP status for an error code.
int StatusFor(ErrorCode code);

// A problem response for an expected error. Uses `error.type` as the slug if
// set, otherwise one derived from the code. kInternal and kUnavailable
// messages stay out of the response (kUnavailable adds Retry-After: 1); log
// them where the request context is known.
Response ProblemFrom(const Error& error);
// The same with another HTTP status than the code's, for the few answers
// HTTP defines more precisely (412 for a stale If-Match, 428 for a missing one).
Response ProblemFrom(const Error& error, int status);

// ProblemFrom(error) for a service's handler: a kInternal or kUnavailable
// error is logged first (warn, with the request id, the route and the
// message the response leaves out), named "<service> request failed".
Response ServiceProblem(const Request& req, const Error& error, std::string_view service);

// A problem response raised by the HTTP layer itself (413, 415, 404, 405 ...).
Response Problem(int status, std::string_view slug, std::string_view title, std::string_view detail);

}  // namespace agora::http
