// Strict reading of JSON request bodies.
//
// ParseObject accepts only a JSON object in valid UTF-8 of bounded depth.
// FieldReader pulls typed fields out of it, collects every problem with its
// field name, and refuses any field nobody asked for, so a request can never
// set more than its handler intends (no mass assignment).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "core/result.h"

namespace agora::json {

// kInvalidArgument ("malformed-json") unless `body` is one JSON object.
Result<boost::json::object> ParseObject(std::string_view body);

// Number of Unicode code points in valid UTF-8 `s`.
size_t Utf8Length(std::string_view s);

class FieldReader {
 public:
  explicit FieldReader(const boost::json::object& obj) : obj_(obj) {}
  // A reader for a nested object: every field it reports is named
  // `prefix` + key ("price." + "amount").
  FieldReader(const boost::json::object& obj, std::string prefix) : obj_(obj), prefix_(std::move(prefix)) {}

  // A string of min..max code points; nullopt if absent (an error if required) or invalid.
  std::optional<std::string> String(std::string_view key, bool required, size_t min_len, size_t max_len);
  std::optional<int64_t> Int(std::string_view key, bool required, int64_t min, int64_t max);
  std::optional<bool> Bool(std::string_view key, bool required);
  // The object under `key`, or nullptr (an error if required or not an object).
  const boost::json::object* Object(std::string_view key, bool required);

  // The array under `key` with at most `max_items` items, or nullptr (an
  // error if required, not an array, or too long).
  const boost::json::array* Array(std::string_view key, bool required, size_t max_items);

  // The name this reader reports for `key` (its prefix + key), for nested readers.
  std::string Name(std::string_view key) const;

  // Records a problem with `field` found by the caller's own checks.
  void AddError(std::string field, std::string message);
  bool has_errors() const { return !errors_.empty(); }

  // kInvalidArgument listing every problem, unknown fields included; Ok otherwise.
  Status Finish();
  // For a nested reader: moves its problems, unknown fields included, to `parent`.
  void FinishInto(FieldReader& parent);

 private:
  const boost::json::value* Take(std::string_view key, bool required);

  const boost::json::object& obj_;
  std::string prefix_;
  std::set<std::string, std::less<>> seen_;
  std::vector<FieldError> errors_;
};

}  // namespace agora::json
