// Idempotency-Key handling for HTTP handlers, the one way every route that
// creates or moves money does it (Stripe's semantics, see idempotency.h):
//
//   return idempotency::RunOnce(store, req, scope, /*required=*/true, [&] {
//     ...do the work, return the Response...
//   });
//
// Without the header: 400 (field "Idempotency-Key") when `required`, else
// the handler simply runs. With it: a finished request with the same key and
// the same method, path, query and body gets its saved answer again (with
// `Idempotent-Replayed: true`); the same key with another request is 422
// /problems/idempotency-key-reused; a request still running with the key is
// 409 /problems/idempotency-key-in-use with Retry-After. 2xx and 4xx answers
// are saved (IsReplayable); a 5xx or an exception releases the key so a
// retry runs again.
#pragma once

#include <functional>
#include <string>

#include "core/http/message.h"
#include "core/idempotency/idempotency.h"

namespace agora::idempotency {

http::Response RunOnce(Store& store, const http::Request& req, const std::string& scope, bool required,
                       const std::function<http::Response()>& handler);

}  // namespace agora::idempotency
