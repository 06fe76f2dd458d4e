#include "services/search/domain/query.h"

#include <gtest/gtest.h>

#include "services/search/domain/result_cache.h"

namespace agora::search {
namespace {

Result<SearchRequest> Parse(std::string_view raw) { return ParseSearchRequest(raw); }

std::string FirstField(const Result<SearchRequest>& r) { return r.error().fields.at(0).field; }

TEST(ValidatePlainText, TrimsAndCollapsesWhiteSpace) {
  auto t = ValidatePlainText("  red \t  phone  ", "q", 200);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "red phone");
}

TEST(ValidatePlainText, RefusesQuerySyntax) {
  for (const char* bad : {"a AND b", "OR", "x NOT y", "a XOR b", "a NEAR b", "a ADJ b", "(phone)", "\"exact\"",
                          "pho*", "title:phone", "a^2", "a~", "{x}", "[x]", "a\\b", "a<b", "a>b", "a=b", "+must",
                          "-not", "red -blue"}) {
    auto t = ValidatePlainText(bad, "q", 200);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(t.error().type, "validation");
    EXPECT_EQ(t.error().fields.at(0).field, "q");
  }
  // Lower-case operator words and inner hyphens are plain words.
  EXPECT_TRUE(ValidatePlainText("rock and roll", "q", 200).ok());
  EXPECT_TRUE(ValidatePlainText("wi-fi e-reader", "q", 200).ok());
  EXPECT_TRUE(ValidatePlainText("Bücher über Köln", "q", 200).ok());
}

TEST(ValidatePlainText, RefusesInvalidUtf8AndTooLong) {
  EXPECT_FALSE(ValidatePlainText("\xC3\x28", "q", 200).ok());
  EXPECT_FALSE(ValidatePlainText("\xED\xA0\x80", "q", 200).ok());  // surrogate
  EXPECT_FALSE(ValidatePlainText("\xC0\xAF", "q", 200).ok());      // overlong
  EXPECT_FALSE(ValidatePlainText(std::string(10240, 'a'), "q", 200).ok());
  EXPECT_TRUE(ValidatePlainText(std::string(200, 'a'), "q", 200).ok());
  EXPECT_FALSE(ValidatePlainText(std::string(201, 'a'), "q", 200).ok());
  // 200 two-byte characters are 200 code points.
  std::string umlauts;
  for (int i = 0; i < 200; ++i) umlauts += "\xC3\xBC";
  EXPECT_TRUE(ValidatePlainText(umlauts, "q", 200).ok());
}

TEST(Utf8Prefix, NeverCutsACharacter) {
  EXPECT_EQ(Utf8Prefix("h\xC3\xA9llo", 2), "h\xC3\xA9");
  EXPECT_EQ(Utf8Prefix("abc", 5), "abc");
  EXPECT_EQ(CodePoints("h\xC3\xA9llo"), 5u);
}

TEST(ParseSearchRequest, DefaultsSortByQuery) {
  auto empty = Parse("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->sort, Sort::kNewest);
  EXPECT_EQ(empty->limit, 20);
  auto text = Parse("q=red+phone");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->sort, Sort::kRelevance);
  EXPECT_EQ(text->words, (std::vector<std::string>{"red", "phone"}));
}

TEST(ParseSearchRequest, ReadsEveryFilter) {
  auto r = Parse("q=x&category=cat_1&seller=usr_2&condition=good,new&min_price=0&max_price=500&in_stock=true"
                 "&currency=EUR&sort=price_desc&limit=100&facets=all");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->category, "cat_1");
  EXPECT_EQ(r->conditions, (std::vector<std::string>{"good", "new"}));
  EXPECT_EQ(*r->min_price, 0);
  EXPECT_EQ(*r->max_price, 500);
  EXPECT_TRUE(*r->in_stock);
  EXPECT_EQ(r->sort, Sort::kPriceDesc);
  EXPECT_TRUE(r->facet_category && r->facet_condition && r->facet_price);
}

TEST(ParseSearchRequest, RefusesBadParametersByName) {
  EXPECT_EQ(FirstField(Parse("sort=cheap")), "sort");
  EXPECT_EQ(FirstField(Parse("limit=0")), "limit");
  EXPECT_EQ(FirstField(Parse("limit=101")), "limit");
  EXPECT_EQ(FirstField(Parse("limit=abc")), "limit");
  EXPECT_EQ(FirstField(Parse("facets=brand")), "facets");
  EXPECT_EQ(FirstField(Parse("facets=")), "facets");
  EXPECT_EQ(FirstField(Parse("colour=red")), "colour");
  EXPECT_EQ(FirstField(Parse("q=a&q=b")), "q");
  EXPECT_EQ(FirstField(Parse("min_price=-1")), "min_price");
  EXPECT_EQ(FirstField(Parse("min_price=10&max_price=5")), "min_price");
  EXPECT_EQ(FirstField(Parse("condition=mint")), "condition");
  EXPECT_EQ(FirstField(Parse("condition=new,")), "condition");
  EXPECT_EQ(FirstField(Parse("in_stock=yes")), "in_stock");
  EXPECT_EQ(FirstField(Parse("currency=eur")), "currency");
  EXPECT_EQ(FirstField(Parse("category=cat%20x")), "category");
  EXPECT_EQ(FirstField(Parse("q=%ZZ")), "query");
  EXPECT_EQ(FirstField(Parse("q=a%20OR%20b")), "q");
}

TEST(SearchRequest, KeysIgnoreParameterOrderAndConditionOrder) {
  auto a = Parse("q=red&condition=new,good&category=c1");
  auto b = Parse("category=c1&condition=good,new&q=red");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->QueryKey(), b->QueryKey());
  auto c = Parse("q=red&condition=new,good&category=c2");
  EXPECT_NE(a->QueryKey(), c->QueryKey());
  auto sorted = Parse("q=red&condition=new,good&category=c1&sort=newest");
  EXPECT_EQ(a->MatchKey(), sorted->MatchKey());
  EXPECT_NE(a->QueryKey(), sorted->QueryKey());
}

TEST(ParseSuggestRequest, NeedsAPrefix) {
  auto ok = ParseSuggestRequest(("q=red+ph&limit=5"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->words.back(), "ph");
  EXPECT_EQ(ok->limit, 5);
  EXPECT_FALSE(ParseSuggestRequest(("")).ok());
  EXPECT_FALSE(ParseSuggestRequest(("q=+")).ok());
  EXPECT_FALSE(ParseSuggestRequest(("q=a&limit=21")).ok());
  EXPECT_FALSE(ParseSuggestRequest(("q=" + std::string(201, 'a'))).ok());
  EXPECT_TRUE(ParseSuggestRequest(("q=" + std::string(200, 'a'))).ok());
  auto missing = ParseSuggestRequest("limit=3");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().fields.at(0).field, "q");
  EXPECT_EQ(missing.error().fields.at(0).message, "is required");
  auto twice = ParseSuggestRequest("q=ph&q=ph&colour=red");
  ASSERT_FALSE(twice.ok());
  ASSERT_EQ(twice.error().fields.size(), 2u);
  EXPECT_EQ(twice.error().fields[0].field, "q");
  EXPECT_EQ(twice.error().fields[1].field, "colour");
}

TEST(ParseSearchRequest, CapsTheNumberOfWords) {
  std::string twelve = "q=w1";
  for (int i = 2; i <= 12; ++i) twelve += "+w" + std::to_string(i);
  auto ok = Parse(twelve);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->words.size(), 12u);
  auto bad = Parse(twelve + "+w13&limit=0");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().type, "validation");
  ASSERT_EQ(bad.error().fields.size(), 2u);
  EXPECT_EQ(bad.error().fields[0].field, "q");
  EXPECT_EQ(bad.error().fields[0].message, "must have at most 12 words");
  EXPECT_EQ(bad.error().fields[1].field, "limit");
  // White space does not count: runs collapse before words are counted.
  EXPECT_TRUE(Parse("q=%20%20a%20%20%20b%20").ok());
}

TEST(ParseSearchRequest, ReportsEveryBadParameterAtOnce) {
  auto r = Parse("sort=cheap&limit=0&colour=red&q=a&q=b");
  ASSERT_FALSE(r.ok());
  std::vector<std::string> fields;
  for (const auto& f : r.error().fields) fields.push_back(f.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"q", "sort", "limit", "colour"}));
}

TEST(PriceBucket, EdgesBelongToTheUpperBucket) {
  EXPECT_EQ(PriceBucket(0), 0);
  EXPECT_EQ(PriceBucket(999), 0);
  EXPECT_EQ(PriceBucket(1000), 1);
  EXPECT_EQ(PriceBucket(2499), 1);
  EXPECT_EQ(PriceBucket(2500), 2);
  EXPECT_EQ(PriceBucket(9999), 3);
  EXPECT_EQ(PriceBucket(10000), 4);
  EXPECT_EQ(PriceBucket(49999), 5);
  EXPECT_EQ(PriceBucket(50000), 6);
  EXPECT_EQ(PriceBucket(1'000'000'000), 6);
}

TEST(FacetKey, RoundTrips) {
  FacetKey k{513, 4, 6};
  FacetKey back;
  ASSERT_TRUE(UnpackFacetKey(PackFacetKey(k), &back));
  EXPECT_EQ(back.category, 513);
  EXPECT_EQ(back.condition, 4);
  EXPECT_EQ(back.price_bucket, 6);
  EXPECT_FALSE(UnpackFacetKey("abc", &back));
}

TEST(ResultCache, EvictsLeastRecentlyUsedWithinBudget) {
  ResultCache cache(4000);
  cache.Put("a", std::string(500, 'a'), 1);
  cache.Put("b", std::string(500, 'b'), 1);
  ASSERT_TRUE(cache.Get("a", 1).has_value());  // a is now the most recent
  for (int i = 0; i < 10; ++i) cache.Put("k" + std::to_string(i), std::string(300, 'x'), 1);
  EXPECT_LE(cache.bytes(), 4000u);
  EXPECT_FALSE(cache.Get("b", 1).has_value());
}

TEST(ResultCache, ANewerRevisionForgetsEverything) {
  ResultCache cache(1 << 20);
  cache.Put("a", "1", 1);
  EXPECT_EQ(*cache.Get("a", 1), "1");
  EXPECT_FALSE(cache.Get("a", 2).has_value());
  EXPECT_EQ(cache.entries(), 0u);
  cache.Put("a", "old", 1);  // computed at an older revision: ignored
  EXPECT_FALSE(cache.Get("a", 2).has_value());
  EXPECT_EQ(cache.hits(), 1u);
}

}  // namespace
}  // namespace agora::search
