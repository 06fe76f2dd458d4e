#include "core/json.h"

#include <boost/json/parse.hpp>
#include <boost/json/parser.hpp>
#include <fmt/format.h>

namespace agora::json {

Result<boost::json::object> ParseObject(std::string_view body) {
  boost::json::parse_options opts;
  opts.max_depth = 32;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec, {}, opts);
  if (ec) {
    return Error::InvalidArgument("The body is not valid JSON: " + ec.message()).WithType("malformed-json");
  }
  if (!v.is_object()) {
    return Error::InvalidArgument("The body must be a JSON object").WithType("malformed-json");
  }
  return std::move(v.as_object());
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

const boost::json::value* FieldReader::Take(std::string_view key, bool required) {
  seen_.emplace(key);
  const boost::json::value* v = obj_.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) errors_.push_back({Name(key), "is required"});
    return nullptr;
  }
  return v;
}

std::optional<std::string> FieldReader::String(std::string_view key, bool required, size_t min_len,
                                                size_t max_len) {
  const auto* v = Take(key, required);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    errors_.push_back({Name(key), "must be a string"});
    return std::nullopt;
  }
  std::string s(v->as_string());
  size_t len = Utf8Length(s);
  if (len < min_len || len > max_len) {
    errors_.push_back({Name(key), fmt::format("must be {} to {} characters long", min_len, max_len)});
    return std::nullopt;
  }
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      errors_.push_back({Name(key), "must not contain control characters"});
      return std::nullopt;
    }
  }
  return s;
}

std::optional<int64_t> FieldReader::Int(std::string_view key, bool required, int64_t min, int64_t max) {
  const auto* v = Take(key, required);
  if (v == nullptr) return std::nullopt;
  int64_t n = 0;
  if (v->is_int64()) {
    n = v->as_int64();
  } else if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    n = static_cast<int64_t>(v->as_uint64());
  } else {
    errors_.push_back({Name(key), "must be an integer"});
    return std::nullopt;
  }
  if (n < min || n > max) {
    errors_.push_back({Name(key), fmt::format("must be between {} and {}", min, max)});
    return std::nullopt;
  }
  return n;
}

std::optional<bool> FieldReader::Bool(std::string_view key, bool required) {
  const auto* v = Take(key, required);
  if (v == nullptr) return std::nullopt;
  if (!v->is_bool()) {
    errors_.push_back({Name(key), "must be true or false"});
    return std::nullopt;
  }
  return v->as_bool();
}

const boost::json::array* FieldReader::Array(std::string_view key, bool required, size_t max_items) {
  const auto* v = Take(key, required);
  if (v == nullptr) return nullptr;
  if (!v->is_array()) {
    errors_.push_back({Name(key), "must be an array"});
    return nullptr;
  }
  if (v->as_array().size() > max_items) {
    errors_.push_back({Name(key), fmt::format("must have at most {} items", max_items)});
    return nullptr;
  }
  return &v->as_array();
}

std::string FieldReader::Name(std::string_view key) const { return prefix_ + std::string(key); }

void FieldReader::FinishInto(FieldReader& parent) {
  for (const auto& kv : obj_) {
    if (!seen_.contains(std::string_view(kv.key()))) errors_.push_back({Name(kv.key()), "is not a known field"});
  }
  for (auto& e : errors_) parent.errors_.push_back(std::move(e));
  errors_.clear();
}

const boost::json::object* FieldReader::Object(std::string_view key, bool required) {
  const auto* v = Take(key, required);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) {
    errors_.push_back({Name(key), "must be an object"});
    return nullptr;
  }
  return &v->as_object();
}

void FieldReader::AddError(std::string field, std::string message) {
  errors_.push_back({prefix_ + field, std::move(message)});
}

Status FieldReader::Finish() {
  for (const auto& kv : obj_) {
    if (!seen_.contains(std::string_view(kv.key()))) {
      errors_.push_back({Name(kv.key()), "is not a known field"});
    }
  }
  if (errors_.empty()) return Ok();
  return Error::Validation(std::move(errors_));
}

}  // namespace agora::json
