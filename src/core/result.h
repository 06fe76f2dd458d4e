// Result<T>: the value of an operation that can fail in an expected way.
//
// Domain and store code return Result<T> instead of throwing. An Error carries
// one code from a short closed list; core/http/problem.cc is the only place
// that maps codes to HTTP statuses. Exceptions are for bugs and start-up only.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace agora {

// The closed list of error codes. When to use each, and whether to retry:
enum class ErrorCode {
  kInvalidArgument,     // The input is malformed or breaks a rule. Do not retry.
  kUnauthenticated,     // No or bad credentials. Retry after logging in.
  kPermissionDenied,    // Authenticated, but not allowed. Do not retry.
  kNotFound,            // The object does not exist or is not visible to you.
  kConflict,            // Clashes with existing state (duplicate, taken). Do not retry as is.
  kFailedPrecondition,  // The object is not in a state that allows it. Do not retry as is.
  kResourceExhausted,   // A rate limit or quota. Retry later.
  kUnavailable,         // A dependency is down or overloaded. Retry with backoff.
  kInternal,            // A bug or broken invariant. Do not retry.
};

// A problem with one input field; `field` is a JSON pointer-ish dotted path.
struct FieldError {
  std::string field;
  std::string message;
};

// An expected failure. `message` is meant for clients (it becomes the
// problem `detail`); never put secrets or personal data in it. `type` is an
// optional stable slug ("email-taken") that refines the code for clients.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::string type;
  std::vector<FieldError> fields;

  static Error InvalidArgument(std::string msg, std::vector<FieldError> fields = {}) {
    return {ErrorCode::kInvalidArgument, std::move(msg), "", std::move(fields)};
  }
  // kInvalidArgument of type "validation" listing every field problem; the
  // message names the field when there is one.
  static Error Validation(std::vector<FieldError> fields) {
    std::string msg = fields.size() == 1 ? "Field '" + fields[0].field + "' " + fields[0].message
                                         : std::to_string(fields.size()) + " fields are invalid";
    return {ErrorCode::kInvalidArgument, std::move(msg), "validation", std::move(fields)};
  }
  static Error Unauthenticated(std::string msg) { return {ErrorCode::kUnauthenticated, std::move(msg), "", {}}; }
  static Error PermissionDenied(std::string msg) { return {ErrorCode::kPermissionDenied, std::move(msg), "", {}}; }
  static Error NotFound(std::string msg) { return {ErrorCode::kNotFound, std::move(msg), "", {}}; }
  static Error Conflict(std::string msg) { return {ErrorCode::kConflict, std::move(msg), "", {}}; }
  static Error FailedPrecondition(std::string msg) { return {ErrorCode::kFailedPrecondition, std::move(msg), "", {}}; }
  static Error ResourceExhausted(std::string msg) { return {ErrorCode::kResourceExhausted, std::move(msg), "", {}}; }
  static Error Unavailable(std::string msg) { return {ErrorCode::kUnavailable, std::move(msg), "", {}}; }
  static Error Internal(std::string msg) { return {ErrorCode::kInternal, std::move(msg), "", {}}; }

  // Returns a copy with the stable problem type slug set.
  Error WithType(std::string t) && {
    type = std::move(t);
    return std::move(*this);
  }
};

const char* ErrorCodeName(ErrorCode code);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}     // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { assert(!ok()); return std::get<1>(v_); }
  Error&& error() && { assert(!ok()); return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { assert(!ok_); return error_; }
  Error&& error() && { assert(!ok_); return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status Ok() { return {}; }

// The outcome of `r` without its value.
template <class T>
Status StatusOf(const Result<T>& r) {
  if (r.ok()) return Ok();
  return r.error();
}

}  // namespace agora

#define AGORA_CONCAT_INNER_(a, b) a##b
#define AGORA_CONCAT_(a, b) AGORA_CONCAT_INNER_(a, b)

// Returns the error of `expr` (a Result) from the enclosing function.
#define AGORA_RETURN_IF_ERROR(expr)                         \
  do {                                                      \
    auto agora_status_ = (expr);                            \
    if (!agora_status_.ok()) {                              \
      return std::move(agora_status_).error();              \
    }                                                       \
  } while (false)

// `AGORA_ASSIGN_OR_RETURN(auto x, F());` binds the value or returns the error.
#define AGORA_ASSIGN_OR_RETURN(lhs, expr) \
  AGORA_ASSIGN_OR_RETURN_IMPL_(AGORA_CONCAT_(agora_result_, __LINE__), lhs, expr)
#define AGORA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) {                                   \
    return std::move(tmp).error();                   \
  }                                                  \
  lhs = std::move(tmp).value()
