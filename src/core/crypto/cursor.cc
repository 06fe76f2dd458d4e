#include "core/crypto/cursor.h"

#include <boost/json.hpp>

#include "core/crypto/encoding.h"
#include "core/crypto/hash.h"
#include "core/crypto/key_files.h"
#include "core/crypto/random.h"

namespace agora::crypto {
namespace {

constexpr size_t kTagBytes = 16;
constexpr size_t kMaxCursorChars = 2048;

Error InvalidCursor() {
  return Error::InvalidArgument("The cursor is not one this server issued; start again without it",
                                {{"cursor", "is not valid"}})
      .WithType("invalid-cursor");
}

}  // namespace

Result<CursorCodec> CursorCodec::LoadOrCreate(const std::filesystem::path& key_dir) {
  AGORA_RETURN_IF_ERROR(EnsurePrivateDir(key_dir));
  const auto path = key_dir / "cursor.key";
  auto existing = ReadWholeFile(path);
  if (existing.ok()) {
    auto key = HexDecode(std::string_view(*existing).substr(0, existing->find_first_of("\r\n")));
    if (!key || key->size() < 32) return Error::Internal("keys/cursor.key is not 32+ bytes of hex");
    return CursorCodec(std::move(*key));
  }
  if (existing.error().code != ErrorCode::kNotFound) return std::move(existing).error();
  std::string key = RandomBytes(32);
  AGORA_RETURN_IF_ERROR(WriteFileAtomic(path, HexEncode(key) + "\n"));
  return CursorCodec(std::move(key));
}

std::string CursorCodec::Encode(const boost::json::object& state) const {
  std::string payload = Base64UrlEncode(boost::json::serialize(state));
  std::string tag = HmacSha256(key_, payload).substr(0, kTagBytes);
  return payload + "." + Base64UrlEncode(tag);
}

Result<boost::json::object> CursorCodec::Decode(std::string_view cursor) const {
  if (cursor.empty() || cursor.size() > kMaxCursorChars) return InvalidCursor();
  const size_t dot = cursor.find('.');
  if (dot == std::string_view::npos) return InvalidCursor();
  std::string_view payload = cursor.substr(0, dot);
  auto tag = Base64UrlDecode(cursor.substr(dot + 1));
  if (!tag || tag->size() != kTagBytes) return InvalidCursor();
  if (!ConstantTimeEquals(*tag, HmacSha256(key_, payload).substr(0, kTagBytes))) return InvalidCursor();
  auto json = Base64UrlDecode(payload);
  if (!json) return InvalidCursor();
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(*json, ec);
  if (ec || !v.is_object()) return InvalidCursor();
  return std::move(v.as_object());
}

}  // namespace agora::crypto
