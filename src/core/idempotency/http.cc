#include "core/idempotency/http.h"

#include "core/http/problem.h"
#include "core/log.h"

namespace agora::idempotency {

namespace {

Saved ToSaved(const http::Response& r) {
  Saved s;
  s.status = r.status;
  s.body = r.body;
  for (const auto& [name, value] : r.headers.items()) {
    if (http::IEquals(name, "Content-Type")) {
      s.content_type = value;
    } else if (http::IEquals(name, "Location") || http::IEquals(name, "ETag")) {
      s.headers.emplace_back(name, value);
    }
  }
  return s;
}

http::Response FromSaved(const Saved& s) {
  http::Response r;
  r.status = s.status;
  r.body = s.body;
  if (!s.content_type.empty()) r.headers.Set("Content-Type", s.content_type);
  for (const auto& [name, value] : s.headers) r.headers.Add(name, value);
  r.headers.Set("Idempotent-Replayed", "true");
  r.headers.Set("Cache-Control", "no-store");
  return r;
}

}  // namespace

http::Response RunOnce(Store& store, const http::Request& req, const std::string& scope, bool required,
                       const std::function<http::Response()>& handler) {
  const auto key = req.headers.Get(kHeader);
  if (!key) {
    if (!required) return handler();
    return http::ProblemFrom(
        Error::Validation({{std::string(kHeader), "required: a unique key per request, reused only for retries"}}));
  }
  const std::string path = req.query.empty() ? req.path : req.path + "?" + req.query;
  auto begin = store.Start(scope, *key, Fingerprint(req.method_name, path, req.body));
  if (!begin.ok()) return http::ProblemFrom(begin.error());
  switch (begin->outcome) {
    case Outcome::kReplay:
      return FromSaved(*begin->saved);
    case Outcome::kMismatch:
      return http::Problem(422, "idempotency-key-reused", "Idempotency key reused",
                           "This Idempotency-Key was used with a different request");
    case Outcome::kInProgress: {
      http::Response r = http::Problem(409, "idempotency-key-in-use", "Request in progress",
                                       "A request with this Idempotency-Key is still running; retry later");
      r.headers.Set("Retry-After", std::to_string(begin->retry_after.count()));
      return r;
    }
    case Outcome::kProceed:
      break;
  }
  http::Response response;
  try {
    response = handler();
  } catch (...) {
    (void)store.Abandon(begin->lease);
    throw;
  }
  if (IsReplayable(response.status)) {
    if (Status s = store.Finish(begin->lease, ToSaved(response)); !s.ok()) {
      log::Warn("idempotent answer not saved", {{"request_id", req.request_id}, {"error", s.error().message}});
    }
  } else if (Status s = store.Abandon(begin->lease); !s.ok()) {
    log::Warn("idempotency key not released", {{"request_id", req.request_id}, {"error", s.error().message}});
  }
  return response;
}

}  // namespace agora::idempotency
