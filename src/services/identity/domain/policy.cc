#include "services/identity/domain/policy.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <unordered_set>

#include "core/json.h"

// Generated at build time from common_passwords.txt.
extern const char kCommonPasswordsText[];

namespace agora::identity {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

const std::unordered_set<std::string>& CommonPasswords() {
  static const std::unordered_set<std::string> set = [] {
    std::unordered_set<std::string> s;
    std::string_view text(kCommonPasswordsText);
    while (!text.empty()) {
      auto nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || line.front() == '#') continue;
      s.emplace(Lower(line));
    }
    return s;
  }();
  return set;
}

bool IsDigitOrSymbol(unsigned char c) { return std::isdigit(c) || std::ispunct(c); }

// "aaaaaaaa", "12345678", "87654321", "abcdefgh".
bool IsTrivialSequence(std::string_view p) {
  if (p.size() < 2) return true;
  bool same = true, up = true, down = true;
  for (size_t i = 1; i < p.size(); ++i) {
    int d = static_cast<unsigned char>(p[i]) - static_cast<unsigned char>(p[i - 1]);
    same = same && d == 0;
    up = up && d == 1;
    down = down && d == -1;
  }
  return same || up || down;
}

}  // namespace

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::optional<std::string> NormalizeEmail(std::string_view raw) {
  std::string email = Lower(Trim(raw));
  if (email.size() < 3 || email.size() > 254) return std::nullopt;
  for (unsigned char c : email) {
    if (c <= 0x20 || c >= 0x7f) return std::nullopt;
  }
  auto at = email.find('@');
  if (at == std::string::npos || at == 0 || at > 64 || email.find('@', at + 1) != std::string::npos) {
    return std::nullopt;
  }
  std::string_view domain = std::string_view(email).substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == std::string_view::npos || domain.front() == '.' ||
      domain.back() == '.' || domain.find("..") != std::string_view::npos) {
    return std::nullopt;
  }
  for (char c : domain) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return std::nullopt;
  }
  return email;
}

bool IsCommonPassword(std::string_view password) {
  const auto& set = CommonPasswords();
  std::string lower = Lower(password);
  if (set.contains(lower)) return true;
  // A common password with up to four digits or symbols around it.
  for (size_t cut = 1; cut <= 4 && cut < lower.size(); ++cut) {
    std::string_view tail = std::string_view(lower).substr(lower.size() - cut);
    if (std::all_of(tail.begin(), tail.end(), IsDigitOrSymbol) && set.contains(lower.substr(0, lower.size() - cut))) {
      return true;
    }
    std::string_view head = std::string_view(lower).substr(0, cut);
    if (std::all_of(head.begin(), head.end(), IsDigitOrSymbol) && set.contains(lower.substr(cut))) return true;
  }
  return false;
}

std::optional<std::string> CheckPassword(std::string_view password, std::string_view email,
                                         std::string_view display_name) {
  size_t len = json::Utf8Length(password);
  if (len < kMinPasswordLength) return "must be at least 8 characters long";
  if (len > kMaxPasswordLength) return "must be at most 128 characters long";
  if (IsTrivialSequence(password)) return "is a trivial sequence of characters";
  if (IsCommonPassword(password)) return "is too common; choose a less guessable password";
  std::string lower = Lower(password);
  std::string mail = Lower(email);
  std::string local = mail.substr(0, mail.find('@'));
  if (lower == mail || (local.size() >= 4 && lower.find(local) != std::string::npos) ||
      (!display_name.empty() && lower == Lower(Trim(display_name)))) {
    return "must not be derived from your email address or name";
  }
  return std::nullopt;
}

std::optional<std::string> CheckDisplayName(std::string_view name) {
  std::string t = Trim(name);
  size_t len = json::Utf8Length(t);
  if (len < 1 || len > 64) return "must be 1 to 64 characters long";
  for (unsigned char c : t) {
    if (c < 0x20 || c == 0x7f) return "must not contain control characters";
  }
  return std::nullopt;
}

}  // namespace agora::identity
