// Structured JSON logs, one object per line on stdout.
//
// Every line has "ts" (RFC 3339 UTC), "level" and "msg", plus the caller's
// fields. Never pass secrets, tokens, passwords or card data as fields.
// Thread-safe.
#pragma once

#include <string_view>

#include <boost/json/object.hpp>

namespace agora::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Sets the minimum level ("debug", "info", "warn", "error"); false if unknown.
bool SetLevel(std::string_view level);
bool Enabled(Level level);

void Write(Level level, std::string_view msg, boost::json::object fields = {});
inline void Debug(std::string_view msg, boost::json::object fields = {}) { Write(Level::kDebug, msg, std::move(fields)); }
inline void Info(std::string_view msg, boost::json::object fields = {}) { Write(Level::kInfo, msg, std::move(fields)); }
inline void Warn(std::string_view msg, boost::json::object fields = {}) { Write(Level::kWarn, msg, std::move(fields)); }
inline void Error(std::string_view msg, boost::json::object fields = {}) { Write(Level::kError, msg, std::move(fields)); }

}  // namespace agora::log
