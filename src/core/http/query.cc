#include "core/http/query.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "core/http/message.h"
#include "core/json.h"

namespace agora::http {
namespace {

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    // Overlong forms, surrogates and code points above U+10FFFF.
    if (n == 2 && c < 0xC2) return false;
    if (n == 3) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) return false;
    }
    if (n == 4) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xF0 && c1 < 0x90) || c > 0xF4 || (c == 0xF4 && c1 >= 0x90)) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

QueryReader::QueryReader(std::string_view query) {
  auto parsed = ParseQuery(query);
  if (!parsed) {
    errors_.push_back({"query", "has a malformed percent escape"});
    return;
  }
  params_ = std::move(*parsed);
}

const std::string* QueryReader::Take(std::string_view name) {
  seen_.emplace(name);
  const std::string* found = nullptr;
  for (const auto& [k, v] : params_) {
    if (k != name) continue;
    if (found != nullptr) {
      errors_.push_back({std::string(name), "must be given once"});
      return nullptr;
    }
    found = &v;
  }
  return found;
}

std::optional<std::string> QueryReader::String(std::string_view name, size_t max_len) {
  const std::string* v = Take(name);
  if (v == nullptr) return std::nullopt;
  if (!ValidUtf8(*v)) {
    errors_.push_back({std::string(name), "must be valid UTF-8"});
    return std::nullopt;
  }
  if (json::Utf8Length(*v) > max_len) {
    errors_.push_back({std::string(name), fmt::format("must be at most {} characters long", max_len)});
    return std::nullopt;
  }
  for (unsigned char c : *v) {
    if (c < 0x20 || c == 0x7f) {
      errors_.push_back({std::string(name), "must not contain control characters"});
      return std::nullopt;
    }
  }
  return *v;
}

std::optional<int64_t> QueryReader::Int(std::string_view name, int64_t min, int64_t max) {
  const std::string* v = Take(name);
  if (v == nullptr) return std::nullopt;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || end != v->data() + v->size()) {
    errors_.push_back({std::string(name), "must be an integer"});
    return std::nullopt;
  }
  if (n < min || n > max) {
    errors_.push_back({std::string(name), fmt::format("must be between {} and {}", min, max)});
    return std::nullopt;
  }
  return n;
}

std::optional<bool> QueryReader::Bool(std::string_view name) {
  const std::string* v = Take(name);
  if (v == nullptr) return std::nullopt;
  if (*v == "true") return true;
  if (*v == "false") return false;
  errors_.push_back({std::string(name), "must be true or false"});
  return std::nullopt;
}

void QueryReader::AddError(std::string name, std::string message) {
  errors_.push_back({std::move(name), std::move(message)});
}

Status QueryReader::Finish() {
  std::set<std::string_view> reported;
  for (const auto& [k, v] : params_) {
    if (seen_.contains(k) || !reported.insert(k).second) continue;
    // Names are echoed in the answer: only printable UTF-8 ones.
    const bool printable = ValidUtf8(k) && json::Utf8Length(k) <= 64 &&
                           std::none_of(k.begin(), k.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
    if (printable) {
      errors_.push_back({k, "is not a known parameter"});
    } else {
      errors_.push_back({"query", "has a parameter whose name is not known"});
    }
  }
  if (errors_.empty()) return Ok();
  return Error::Validation(std::move(errors_));
}

}  // namespace agora::http
