// SHA-256, HMAC-SHA256 and constant-time comparison, from OpenSSL.
//
// Digests are returned as raw bytes in a std::string; use Sha256Hex or
// HexEncode/Base64UrlEncode for text. Compare secrets (MACs, tokens, hashes)
// only with ConstantTimeEquals. All functions are pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace agora::crypto {

inline constexpr size_t kSha256Size = 32;

// Returns the 32-byte SHA-256 digest of `data`.
std::string Sha256(std::string_view data);

// Returns the SHA-256 digest of `data` as 64 lowercase hex characters.
std::string Sha256Hex(std::string_view data);

// Returns the 32-byte HMAC-SHA256 (RFC 2104) of `data` under `key`.
std::string HmacSha256(std::string_view key, std::string_view data);

// Returns whether `a` and `b` are equal. Returns false at once when the
// lengths differ; otherwise the time taken does not depend on the content.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace agora::crypto
