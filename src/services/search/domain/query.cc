#include "services/search/domain/query.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "core/crypto/hash.h"
#include "core/http/query.h"
#include "core/strings.h"

namespace agora::search {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool IsOperatorWord(std::string_view w) {
  static constexpr std::string_view kWords[] = {"AND", "OR", "NOT", "XOR", "NEAR", "ADJ"};
  return std::find(std::begin(kWords), std::end(kWords), w) != std::end(kWords);
}

// Ids are opaque but short and plain: letters, digits, '_' and '-'.
bool IsPlainId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

void AppendField(std::string& out, std::string_view name, std::string_view value) {
  // Length-prefixed, so no value can imitate another field.
  out += name;
  out += '=';
  out += std::to_string(value.size());
  out += ':';
  out += value;
  out += ';';
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string_view Utf8Prefix(std::string_view s, size_t max_code_points) {
  size_t count = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (count == max_code_points) return s.substr(0, i);
      ++count;
    }
  }
  return s;
}

Result<std::string> ValidatePlainText(std::string_view text, std::string_view field, size_t max_code_points) {
  const std::string f(field);
  // A 10 KB query is refused before any other work.
  if (text.size() > max_code_points * 4 + 64) {
    return Error::Validation({{f, "must be at most " + std::to_string(max_code_points) + " characters"}});
  }
  if (!IsValidUtf8(text)) return Error::Validation({{f, "must be valid UTF-8"}});
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && IsSpace(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !IsSpace(text[i])) ++i;
    if (start == i) break;
    std::string_view word = text.substr(start, i - start);
    if (word.front() == '+' || word.front() == '-' || IsOperatorWord(word) ||
        word.find_first_of("()\"*:^~{}[]\\<>=") != std::string_view::npos) {
      return Error::Validation({{f, "must be plain words; search operators are not supported"}});
    }
    for (char c : word) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
        return Error::Validation({{f, "must not contain control characters"}});
      }
    }
    if (!out.empty()) out.push_back(' ');
    out.append(word);
  }
  if (CodePoints(out) > max_code_points) {
    return Error::Validation({{f, "must be at most " + std::to_string(max_code_points) + " characters"}});
  }
  return out;
}

std::vector<std::string> Words(std::string_view normalised) {
  std::vector<std::string> words;
  while (!normalised.empty()) {
    size_t sp = normalised.find(' ');
    words.emplace_back(normalised.substr(0, sp));
    if (sp == std::string_view::npos) break;
    normalised.remove_prefix(sp + 1);
  }
  return words;
}

const char* SortName(Sort s) {
  switch (s) {
    case Sort::kRelevance: return "relevance";
    case Sort::kNewest: return "newest";
    case Sort::kPriceAsc: return "price_asc";
    case Sort::kPriceDesc: return "price_desc";
  }
  return "relevance";
}

int ConditionIndex(std::string_view condition) {
  for (int i = 0; i < kConditionCount; ++i) {
    if (condition == kConditionNames[i]) return i;
  }
  return -1;
}

int PriceBucket(int64_t amount) {
  int b = 0;
  for (int i = 1; i < kPriceBucketCount; ++i) {
    if (amount >= kPriceBucketMin[i]) b = i;
  }
  return b;
}

std::string PackFacetKey(const FacetKey& key) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(key.category >> 8);
  s[1] = static_cast<char>(key.category & 0xFF);
  s[2] = static_cast<char>(key.condition);
  s[3] = static_cast<char>(key.price_bucket);
  return s;
}

bool UnpackFacetKey(std::string_view packed, FacetKey* key) {
  if (packed.size() != 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(packed.data());
  key->category = static_cast<uint16_t>((p[0] << 8) | p[1]);
  key->condition = p[2];
  key->price_bucket = p[3];
  return true;
}

std::string SearchRequest::MatchKey() const {
  std::string k;
  k.reserve(64 + q.size());
  AppendField(k, "q", q);
  AppendField(k, "category", category);
  AppendField(k, "seller", seller);
  std::string conds;
  for (const auto& c : conditions) conds += c + ",";
  AppendField(k, "condition", conds);
  AppendField(k, "min", min_price ? std::to_string(*min_price) : "");
  AppendField(k, "max", max_price ? std::to_string(*max_price) : "");
  AppendField(k, "stock", in_stock ? (*in_stock ? "1" : "0") : "");
  AppendField(k, "currency", currency);
  return k;
}

std::string SearchRequest::QueryKey() const {
  std::string k = MatchKey();
  AppendField(k, "sort", SortName(sort));
  std::string f;
  if (facet_category) f += "c";
  if (facet_condition) f += "k";
  if (facet_price) f += "p";
  AppendField(k, "facets", f);
  return k;
}

namespace {

// The largest raw q QueryReader accepts before ValidatePlainText trims it
// and applies the real limit (so "  a  " counts as one character).
constexpr size_t kRawTextChars = 1024;
// Prices in minor units: at most 15 digits.
constexpr int64_t kMaxPrice = 999'999'999'999'999;

// Reads free text `name` into `out` (normalised); false when absent or bad
// (*present says which).
bool ReadText(http::QueryReader& in, std::string_view name, size_t max_chars, std::string* out, bool* present) {
  const bool errors_before = in.has_errors();
  auto raw = in.String(name, kRawTextChars);
  *present = raw.has_value() || (in.has_errors() && !errors_before);
  if (!raw) return false;
  auto text = ValidatePlainText(*raw, name, max_chars);
  if (!text.ok()) {
    for (auto& f : text.error().fields) in.AddError(std::move(f.field), std::move(f.message));
    return false;
  }
  *out = std::move(*text);
  return true;
}

}  // namespace

Result<SearchRequest> ParseSearchRequest(std::string_view raw_query) {
  http::QueryReader in(raw_query);
  SearchRequest r;
  bool present = false;
  if (ReadText(in, "q", kMaxQueryChars, &r.q, &present)) {
    r.words = Words(r.q);
    if (r.words.size() > kMaxQueryWords) {
      in.AddError("q", "must have at most " + std::to_string(kMaxQueryWords) + " words");
    }
  }
  if (auto v = in.String("category", 64)) {
    if (!IsPlainId(*v)) in.AddError("category", "must be a category id");
    r.category = std::move(*v);
  }
  if (auto v = in.String("seller", 64)) {
    if (!IsPlainId(*v)) in.AddError("seller", "must be a user id");
    r.seller = std::move(*v);
  }
  if (auto v = in.String("condition", 64)) {
    std::set<std::string> set;
    bool bad = v->empty();
    for (std::string_view c : SplitList(*v)) {
      bad = bad || ConditionIndex(c) < 0;
      set.emplace(c);
    }
    if (bad) in.AddError("condition", "must be a comma-separated list of new, like_new, good, fair, poor");
    r.conditions.assign(set.begin(), set.end());
  }
  r.min_price = in.Int("min_price", 0, kMaxPrice);
  r.max_price = in.Int("max_price", 0, kMaxPrice);
  r.in_stock = in.Bool("in_stock");
  if (auto v = in.String("currency", 3)) {
    if (v->size() != 3 || !std::all_of(v->begin(), v->end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      in.AddError("currency", "must be a 3-letter upper-case ISO 4217 code");
    }
    r.currency = std::move(*v);
  }
  const auto sort = in.String("sort", 32);
  if (sort) {
    if (*sort == "relevance") {
      r.sort = Sort::kRelevance;
    } else if (*sort == "newest") {
      r.sort = Sort::kNewest;
    } else if (*sort == "price_asc") {
      r.sort = Sort::kPriceAsc;
    } else if (*sort == "price_desc") {
      r.sort = Sort::kPriceDesc;
    } else {
      in.AddError("sort", "must be one of relevance, newest, price_asc, price_desc");
    }
  }
  if (auto v = in.Int("limit", 1, 100)) r.limit = static_cast<int>(*v);
  if (auto v = in.String("cursor", 1024)) {
    if (v->empty()) in.AddError("cursor", "must not be empty");
    r.cursor = std::move(*v);
  }
  if (auto v = in.String("facets", 64)) {
    bool bad = v->empty();
    for (std::string_view f : SplitList(*v)) {
      if (f == "category") {
        r.facet_category = true;
      } else if (f == "condition") {
        r.facet_condition = true;
      } else if (f == "price") {
        r.facet_price = true;
      } else if (f == "all") {
        r.facet_category = r.facet_condition = r.facet_price = true;
      } else {
        bad = true;
      }
    }
    if (bad) in.AddError("facets", "must be a comma-separated list of category, condition, price or all");
  }
  if (r.min_price && r.max_price && *r.min_price > *r.max_price) {
    in.AddError("min_price", "must not be greater than max_price");
  }
  AGORA_RETURN_IF_ERROR(in.Finish());
  if (!sort) r.sort = r.q.empty() ? Sort::kNewest : Sort::kRelevance;
  return r;
}

Result<SuggestRequest> ParseSuggestRequest(std::string_view raw_query) {
  http::QueryReader in(raw_query);
  SuggestRequest r;
  std::string q;
  bool present = false;
  if (ReadText(in, "q", kMaxQueryChars, &q, &present)) {
    if (q.empty()) in.AddError("q", "must not be empty");
    r.q = std::move(q);
  } else if (!present) {
    in.AddError("q", "is required");
  }
  if (auto v = in.Int("limit", 1, 20)) r.limit = static_cast<int>(*v);
  AGORA_RETURN_IF_ERROR(in.Finish());
  r.words = Words(r.q);
  return r;
}

std::string QueryHash(std::string_view text) { return crypto::Sha256Hex(text).substr(0, 16); }

}  // namespace agora::search
