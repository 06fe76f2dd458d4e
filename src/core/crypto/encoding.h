// Text encodings for binary data: base64url (RFC 4648 §5, no padding, as JWS
// uses) and lowercase hex.
//
// Decoders are strict: they refuse padding, whitespace, characters outside the
// alphabet and non-canonical trailing bits, returning nullopt. All functions
// are pure and thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace agora::crypto {

// Returns `bytes` as base64url without '=' padding.
std::string Base64UrlEncode(std::string_view bytes);

// Returns the bytes encoded by `text`, or nullopt if `text` is not canonical
// unpadded base64url (any '=', '+', '/', whitespace or impossible length).
std::optional<std::string> Base64UrlDecode(std::string_view text);

// Returns `bytes` as lowercase hex, two characters per byte.
std::string HexEncode(std::string_view bytes);

// Returns the bytes encoded by `text` (upper or lower case), or nullopt if it
// has an odd length or a non-hex character.
std::optional<std::string> HexDecode(std::string_view text);

}  // namespace agora::crypto
