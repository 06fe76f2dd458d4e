// The search service's pure rules: what a search or suggest request may say,
// how it is normalised into a canonical key (for the result cache and the
// cursor hash), the price buckets of the price facet and the packed facet key.
// No Xapian, no I/O; every function is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace agora::search {

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or values
// above U+10FFFF).
bool IsValidUtf8(std::string_view s);
// Number of code points in valid UTF-8.
size_t CodePoints(std::string_view s);
// The longest prefix of valid UTF-8 `s` with at most `max_code_points` code
// points (never cuts inside a character).
std::string_view Utf8Prefix(std::string_view s, size_t max_code_points);

// Checks free text typed by a user: valid UTF-8, at most `max_code_points`
// after trimming, plain words only (no search-engine syntax: any of
// ( ) " * : ^ ~ { } [ ] \ < > =, a word starting with + or -, or the
// upper-case operator words AND OR NOT XOR NEAR ADJ). Returns the trimmed text
// with runs of white space collapsed to one space, or kInvalidArgument
// (type "validation") naming `field`.
Result<std::string> ValidatePlainText(std::string_view text, std::string_view field, size_t max_code_points);

// The words of normalised text (split on single spaces).
std::vector<std::string> Words(std::string_view normalised);

enum class Sort { kRelevance, kNewest, kPriceAsc, kPriceDesc };
const char* SortName(Sort s);

inline constexpr const char* kConditionNames[] = {"new", "like_new", "good", "fair", "poor"};
inline constexpr int kConditionCount = 5;
// Index into kConditionNames, or -1.
int ConditionIndex(std::string_view condition);

// Price facet buckets in minor units: [0,1000), [1000,2500), [2500,5000),
// [5000,10000), [10000,25000), [25000,50000), [50000, inf).
inline constexpr std::array<int64_t, 7> kPriceBucketMin = {0, 1000, 2500, 5000, 10000, 25000, 50000};
inline constexpr int kPriceBucketCount = 7;
// The bucket of `amount` (negative amounts fall in the first).
int PriceBucket(int64_t amount);

// The facet key packed into one value slot: 4 bytes, big-endian leaf category
// index (16 bits), condition index (255: unknown), price bucket.
struct FacetKey {
  uint16_t category = 0;  // 0: none; otherwise an index the indexer assigned
  uint8_t condition = 255;
  uint8_t price_bucket = 0;
};
std::string PackFacetKey(const FacetKey& key);
// False unless `packed` is 4 bytes.
bool UnpackFacetKey(std::string_view packed, FacetKey* key);

// Counts per facet, as the match spy fills them.
struct FacetCounts {
  std::vector<uint32_t> category;  // by category index
  std::array<uint32_t, kConditionCount> condition{};
  std::array<uint32_t, kPriceBucketCount> price{};
};

struct SearchRequest {
  std::string q;  // normalised; "" = every active listing
  std::vector<std::string> words;
  std::string category;                 // cat id (matches descendants), "" = any
  std::string seller;                   // usr id, "" = any
  std::vector<std::string> conditions;  // sorted, unique; empty = any
  std::optional<int64_t> min_price, max_price;  // inclusive, minor units
  std::optional<bool> in_stock;
  std::string currency;  // "" = any
  Sort sort = Sort::kRelevance;
  int limit = 20;
  std::string cursor;  // as sent, "" = first page
  bool facet_category = false, facet_condition = false, facet_price = false;

  bool any_facet() const { return facet_category || facet_condition || facet_price; }
  // q and filters only: what decides the matching set (facet cache key).
  std::string MatchKey() const;
  // Everything that decides the order and the facets, but not the page:
  // the cursor carries a hash of this.
  std::string QueryKey() const;
};

inline constexpr int kMaxResultWindow = 1000;  // offset + limit never beyond
// Caps on the work one search can cause: q has at most kMaxQueryWords words
// (each is a posting list to intersect, and the any-word fallback ORs them
// all), and only the first kMaxSpellingWords get a spelling suggestion (each
// is an edit-distance scan of the spelling table).
inline constexpr size_t kMaxQueryWords = 12;
inline constexpr size_t kMaxSpellingWords = 4;
inline constexpr size_t kMaxQueryChars = 200;

// Parses and validates the raw query string of GET /v1/search with
// http::QueryReader; kInvalidArgument (type "validation") listing every bad
// field, unknown and repeated parameters included.
Result<SearchRequest> ParseSearchRequest(std::string_view raw_query);

struct SuggestRequest {
  std::string q;                    // normalised, non-empty
  std::vector<std::string> words;  // the last one is the prefix to complete
  int limit = 8;
};
// GET /v1/search/suggest: q (required, plain text, at most 200 characters)
// and limit (1 to 20).
Result<SuggestRequest> ParseSuggestRequest(std::string_view raw_query);
// A last word shorter than this completes to nothing (answered without
// touching the index): a 1-letter prefix would scan a large share of the
// vocabulary for completions nobody can choose between.
inline constexpr size_t kMinSuggestPrefixChars = 2;

// A short stable hash (hex) of `text`, for the cursor's query binding.
std::string QueryHash(std::string_view text);

}  // namespace agora::search
