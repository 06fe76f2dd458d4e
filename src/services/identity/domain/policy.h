// Input rules for accounts: email normalization, the password policy
// (NIST SP 800-63B: 8 to 128 characters, no common or context-specific
// passwords, no composition rules) and display names. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace agora::identity {

inline constexpr size_t kMinPasswordLength = 8;
inline constexpr size_t kMaxPasswordLength = 128;

// Lowercased, trimmed address, or nullopt if it is not a plausible address:
// one '@', a local part of 1..64 and a dotted domain, 254 characters at most,
// printable ASCII without spaces.
std::optional<std::string> NormalizeEmail(std::string_view email);

// Why `password` is refused, or nullopt if it is acceptable. `email` and
// `display_name` are the context: a password equal to them, or to the
// email's local part, is refused.
std::optional<std::string> CheckPassword(std::string_view password, std::string_view email,
                                         std::string_view display_name);

// True if `password` (case-insensitively) is on the bundled list of common passwords.
bool IsCommonPassword(std::string_view password);

// Why `name` is refused as a display name, or nullopt: 1..64 characters after
// trimming, no control characters.
std::optional<std::string> CheckDisplayName(std::string_view name);

std::string Trim(std::string_view s);

}  // namespace agora::identity
