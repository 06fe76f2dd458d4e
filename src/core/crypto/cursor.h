// Opaque, tamper-evident pagination cursors.
//
// A cursor carries the position of a list page (the last row's sort key and
// the filters it was made for) as a small JSON object, base64url-encoded and
// followed by a truncated HMAC-SHA256 tag: "<payload>.<tag>". Clients cannot
// read meaning into it, and any change to it is refused as "invalid-cursor".
// The key lives in the data folder (keys/cursor.key), so cursors survive a
// restart; every instance sharing the folder accepts the others' cursors.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "core/result.h"

namespace agora::crypto {

class CursorCodec {
 public:
  explicit CursorCodec(std::string key) : key_(std::move(key)) {}

  // Reads `key_dir`/cursor.key, creating it (32 random bytes, 0600) if missing.
  static Result<CursorCodec> LoadOrCreate(const std::filesystem::path& key_dir);

  std::string Encode(const boost::json::object& state) const;
  // The state a cursor from Encode() carried; kInvalidArgument with type
  // "invalid-cursor" for anything else (tampered, truncated, another key).
  Result<boost::json::object> Decode(std::string_view cursor) const;

 private:
  std::string key_;
};

}  // namespace agora::crypto
