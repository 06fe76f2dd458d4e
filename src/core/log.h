// Structured JSON logs, one object per line on stdout.
//
// Every line has "ts" (RFC 3339 UTC), "level" and "msg", plus the caller's
// fields. Never pass secrets, tokens, passwords or card data as fields.
// Lines are written in batches within 100 ms (warnings and errors at once);
// Flush() writes what is pending, as does normal process exit. Thread-safe.
#pragma once

#include <string_view>

#include <boost/json/object.hpp>

namespace agora::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Sets the minimum level ("debug", "info", "warn", "error"); false if unknown.
bool SetLevel(std::string_view level);
bool Enabled(Level level);

void Flush();

// Appends `s` to `out` as a JSON string literal, quotes included.
void AppendJsonString(std::string& out, std::string_view s);
// Appends the current time as a quoted RFC 3339 UTC string with milliseconds
// (cached per thread for the current second: cheap on hot paths).
void AppendNow(std::string& out);
// Writes one prebuilt JSON object line (without the trailing newline), for
// hot paths such as the access log that format their own lines.
void WriteLine(Level level, std::string json_object);

void Write(Level level, std::string_view msg, boost::json::object fields = {});
inline void Debug(std::string_view msg, boost::json::object fields = {}) { Write(Level::kDebug, msg, std::move(fields)); }
inline void Info(std::string_view msg, boost::json::object fields = {}) { Write(Level::kInfo, msg, std::move(fields)); }
inline void Warn(std::string_view msg, boost::json::object fields = {}) { Write(Level::kWarn, msg, std::move(fields)); }
inline void Error(std::string_view msg, boost::json::object fields = {}) { Write(Level::kError, msg, std::move(fields)); }

}  // namespace agora::log
