// Opaque, prefixed, time-ordered identifiers: "usr_01JD3M8Z6Q4V7R2K9T5W1X3Y4Z".
//
// 48 bits of milliseconds since the epoch then 80 random bits, in Crockford
// base32 (26 characters), so ids sort by creation time and cannot be guessed.
// Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "core/clock.h"

namespace agora {

std::string NewId(std::string_view prefix, const Clock& clock = SystemClock::Instance());

// True when `id` is `prefix` followed by 26 Crockford base32 characters.
bool IsValidId(std::string_view id, std::string_view prefix);

}  // namespace agora
