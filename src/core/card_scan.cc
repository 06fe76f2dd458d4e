#include "core/card_scan.h"

#include <string>
#include <vector>

namespace agora {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

constexpr size_t kMinDigits = 13, kMaxDigits = 19;

}  // namespace

bool LuhnValid(std::string_view digits) {
  int sum = 0;
  bool twice = false;
  for (size_t i = digits.size(); i-- > 0;) {
    int d = digits[i] - '0';
    if (d < 0 || d > 9) return false;
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return !digits.empty() && sum % 10 == 0;
}

bool ContainsCardNumber(std::string_view text) {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (!IsDigit(text[i]) || (i > 0 && (IsAlnum(text[i - 1]) || text[i - 1] == '.'))) {
      ++i;
      continue;
    }
    // A run of digit groups separated by single spaces or dashes.
    std::vector<std::string_view> groups;
    size_t j = i;
    while (true) {
      const size_t g = j;
      while (j < n && IsDigit(text[j])) ++j;
      groups.push_back(text.substr(g, j - g));
      if (j + 1 < n && (text[j] == ' ' || text[j] == '-') && IsDigit(text[j + 1])) {
        ++j;
        continue;
      }
      break;
    }
    // The run must not be glued to a letter or a decimal point after it.
    const bool bounded = j == n || (!IsAlnum(text[j]) && text[j] != '.');
    // Any consecutive groups may form the number ("order 12 4242 4242 4242
    // 4242" holds one), but never part of a group.
    for (size_t first = 0; first < groups.size(); ++first) {
      std::string digits;
      for (size_t last = first; last < groups.size(); ++last) {
        digits += groups[last];
        if (digits.size() > kMaxDigits) break;
        const bool at_end = last + 1 == groups.size();
        if (digits.size() >= kMinDigits && (!at_end || bounded) && LuhnValid(digits)) return true;
      }
    }
    i = j;
  }
  return false;
}

}  // namespace agora
