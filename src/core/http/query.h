// Strict reading of query strings, the counterpart of json::FieldReader:
// typed parameters, every problem collected with its parameter name, and
// unknown or repeated parameters refused (a typo never silently widens a
// filter).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace agora::http {

class QueryReader {
 public:
  explicit QueryReader(std::string_view query);

  // The value of `name` (at most `max_len` code points, valid UTF-8, no
  // control characters); nullopt when absent or invalid.
  std::optional<std::string> String(std::string_view name, size_t max_len);
  std::optional<int64_t> Int(std::string_view name, int64_t min, int64_t max);
  // "true" or "false".
  std::optional<bool> Bool(std::string_view name);
  void AddError(std::string name, std::string message);
  bool has_errors() const { return !errors_.empty(); }
  // kInvalidArgument (type "validation") listing every problem, unknown
  // parameters included; Ok otherwise.
  Status Finish();

 private:
  const std::string* Take(std::string_view name);

  std::vector<std::pair<std::string, std::string>> params_;
  std::set<std::string, std::less<>> seen_;
  std::vector<FieldError> errors_;
};

}  // namespace agora::http
