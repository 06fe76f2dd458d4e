#include "core/id.h"

#include <sodium.h>

namespace agora {
namespace {
constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
}

std::string NewId(std::string_view prefix, const Clock& clock) {
  unsigned char bytes[16];
  uint64_t ms = static_cast<uint64_t>(clock.NowMillis());
  for (int i = 5; i >= 0; --i) {
    bytes[i] = static_cast<unsigned char>(ms & 0xff);
    ms >>= 8;
  }
  randombytes_buf(bytes + 6, 10);
  // 128 bits -> 26 base32 digits (the first carries 3 bits).
  std::string out(prefix);
  out.reserve(prefix.size() + 26);
  unsigned __int128 v = 0;
  for (unsigned char b : bytes) v = (v << 8) | b;
  char digits[26];
  for (int i = 25; i >= 0; --i) {
    digits[i] = kCrockford[static_cast<int>(v & 31)];
    v >>= 5;
  }
  out.append(digits, 26);
  return out;
}

bool IsValidId(std::string_view id, std::string_view prefix) {
  if (id.size() != prefix.size() + 26 || id.substr(0, prefix.size()) != prefix) return false;
  for (char c : id.substr(prefix.size())) {
    if (std::string_view(kCrockford).find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace agora
