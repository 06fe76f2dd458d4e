// Reading a JSON request body in a handler, the one way every service does.
#pragma once

#include <optional>
#include <utility>

#include "core/http/message.h"
#include "core/http/problem.h"
#include "core/json.h"

namespace agora::http {

// Parses `req.body` as one JSON object and hands a FieldReader over it to
// `read`. Returns the 400 problem to answer when the body is not an object
// or any field is missing, invalid or unknown; nullopt when all is well.
//
//   if (auto bad = ReadJsonBody(req, [&](json::FieldReader& r) { name = r.String(...); })) return *bad;
template <class F>
std::optional<Response> ReadJsonBody(const Request& req, F&& read) {
  auto body = json::ParseObject(req.body);
  if (!body.ok()) return ProblemFrom(body.error());
  json::FieldReader r(*body);
  std::forward<F>(read)(r);
  if (Status s = r.Finish(); !s.ok()) return ProblemFrom(s.error());
  return std::nullopt;
}

}  // namespace agora::http
