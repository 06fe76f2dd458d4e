#include "core/http/problem.h"

#include "core/log.h"

#include <boost/json.hpp>

namespace agora::http {
namespace {

struct CodeInfo {
  int status;
  const char* slug;
  const char* title;
};

CodeInfo InfoFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return {400, "invalid-argument", "The request is invalid"};
    case ErrorCode::kUnauthenticated: return {401, "unauthenticated", "Authentication is required"};
    case ErrorCode::kPermissionDenied: return {403, "permission-denied", "Not allowed"};
    case ErrorCode::kNotFound: return {404, "not-found", "Not found"};
    case ErrorCode::kConflict: return {409, "conflict", "Conflict with the current state"};
    case ErrorCode::kFailedPrecondition: return {409, "failed-precondition", "Not allowed in the current state"};
    case ErrorCode::kResourceExhausted: return {429, "rate-limited", "Too many requests"};
    case ErrorCode::kUnavailable: return {503, "unavailable", "Service unavailable"};
    case ErrorCode::kInternal: return {500, "internal", "Internal error"};
  }
  return {500, "internal", "Internal error"};
}

Response Build(int status, std::string_view slug, std::string_view title, std::string_view detail,
               const std::vector<FieldError>* fields) {
  boost::json::object o;
  o["type"] = std::string("/problems/") + std::string(slug);
  o["title"] = title;
  o["status"] = status;
  if (!detail.empty()) o["detail"] = detail;
  if (fields != nullptr && !fields->empty()) {
    boost::json::array errors;
    for (const auto& f : *fields) {
      errors.push_back(boost::json::object{{"field", f.field}, {"message", f.message}});
    }
    o["errors"] = std::move(errors);
  }
  Response r;
  r.status = status;
  r.headers.Set("Content-Type", "application/problem+json");
  r.body = boost::json::serialize(o);
  return r;
}

}  // namespace

int StatusFor(ErrorCode code) { return InfoFor(code).status; }

Response ProblemFrom(const Error& error) { return ProblemFrom(error, InfoFor(error.code).status); }

Response ProblemFrom(const Error& error, int status) {
  CodeInfo info = InfoFor(error.code);
  if (status != info.status) {
    info.status = status;
    if (status == 412) info.title = "Precondition failed";
    if (status == 428) info.title = "Precondition required";
  }
  std::string_view slug = error.type.empty() ? std::string_view(info.slug) : std::string_view(error.type);
  // Internal and unavailable errors carry implementation detail (statement
  // names, hosts, paths): never send them out. Callers log them.
  if (error.code == ErrorCode::kInternal) return Build(info.status, slug, info.title, "", &error.fields);
  if (error.code == ErrorCode::kUnavailable) {
    Response r = Build(info.status, slug, info.title, "A dependency is unavailable; retry shortly", nullptr);
    r.headers.Set("Retry-After", "1");
    return r;
  }
  return Build(info.status, slug, info.title, error.message, &error.fields);
}

Response Problem(int status, std::string_view slug, std::string_view title, std::string_view detail) {
  return Build(status, slug, title, detail, nullptr);
}

Response ServiceProblem(const Request& req, const Error& error, std::string_view service) {
  if (error.code == ErrorCode::kUnavailable || error.code == ErrorCode::kInternal) {
    log::Warn(std::string(service) + " request failed", {{"request_id", req.request_id},
                                                         {"route", std::string(req.route)},
                                                         {"code", ErrorCodeName(error.code)},
                                                         {"error", error.message}});
  }
  return ProblemFrom(error);
}

}  // namespace agora::http
