#include "services/search/api/handlers.h"

#include <algorithm>
#include <numeric>

#include <boost/json.hpp>

#include "core/http/conditional.h"
#include "core/http/problem.h"
#include "core/log.h"

namespace agora::search {
namespace {

Error InvalidCursor() {
  return Error::InvalidArgument("The cursor is not one this server issued for this query; start again without it",
                                {{"cursor", "is not valid"}})
      .WithType("invalid-cursor");
}

std::string Quote(std::string_view s) { return boost::json::serialize(boost::json::value(boost::json::string(s))); }

// {"category":[...],"condition":[...],"price":[...]} with the requested facets.
std::string RenderFacets(const SearchRequest& req, const FacetCounts& counts, const CategoryTable& categories) {
  boost::json::object out;
  if (req.facet_category) {
    std::vector<size_t> idx;
    for (size_t i = 1; i < counts.category.size() && i < categories.ids.size(); ++i) {
      if (counts.category[i] > 0) idx.push_back(i);
    }
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      return counts.category[a] != counts.category[b] ? counts.category[a] > counts.category[b]
                                                      : categories.names[a] < categories.names[b];
    });
    boost::json::array a;
    for (size_t i : idx) {
      a.push_back(boost::json::object{
          {"id", categories.ids[i]}, {"name", categories.names[i]}, {"count", counts.category[i]}});
    }
    out["category"] = std::move(a);
  }
  if (req.facet_condition) {
    std::vector<int> idx(kConditionCount);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return counts.condition[a] > counts.condition[b]; });
    boost::json::array a;
    for (int i : idx) {
      if (counts.condition[i] > 0) a.push_back(boost::json::object{{"value", kConditionNames[i]}, {"count", counts.condition[i]}});
    }
    out["condition"] = std::move(a);
  }
  if (req.facet_price) {
    boost::json::array a;
    for (int i = 0; i < kPriceBucketCount; ++i) {
      if (counts.price[i] == 0) continue;
      boost::json::object b{{"min", kPriceBucketMin[i]}, {"count", counts.price[i]}};
      if (i + 1 < kPriceBucketCount) {
        b["max"] = kPriceBucketMin[i + 1];
      } else {
        b["max"] = nullptr;
      }
      a.push_back(std::move(b));
    }
    out["price"] = std::move(a);
  }
  return boost::json::serialize(out);
}

std::string FacetCacheKey(const SearchRequest& req) {
  std::string k = req.MatchKey();
  k += req.facet_category ? 'c' : '-';
  k += req.facet_condition ? 'k' : '-';
  k += req.facet_price ? 'p' : '-';
  return k;
}

http::Response JsonBody(std::string body) {
  http::Response res;
  res.status = 200;
  res.headers.Set("Content-Type", "application/json");
  res.body = std::move(body);
  return res;
}

http::Response ProblemFor(const http::Request& req, const Error& error) {
  if (error.code == ErrorCode::kUnavailable || error.code == ErrorCode::kInternal) {
    log::Warn("search request failed", {{"request_id", req.request_id},
                                        {"route", std::string(req.route)},
                                        {"code", ErrorCodeName(error.code)},
                                        {"error", error.message}});
  }
  return http::ProblemFrom(error);
}

}  // namespace

Result<std::string> SearchApi::Search(std::string_view raw_query) {
  AGORA_ASSIGN_OR_RETURN(const SearchRequest req, ParseSearchRequest(raw_query));
  const std::string query_key = req.QueryKey();
  const std::string hash = QueryHash(query_key);
  int offset = 0;
  if (!req.cursor.empty()) {
    AGORA_ASSIGN_OR_RETURN(const boost::json::object state, cursors_.Decode(req.cursor));
    const auto* o = state.if_contains("o");
    const auto* h = state.if_contains("h");
    if (!o || !o->is_int64() || o->get_int64() < 1 || o->get_int64() >= kMaxResultWindow || !h || !h->is_string() ||
        h->get_string() != hash) {
      return InvalidCursor();
    }
    offset = static_cast<int>(o->get_int64());
  }

  const uint64_t revision = indexer_.revision();
  std::string key = query_key;
  key += "o=" + std::to_string(offset) + ";l=" + std::to_string(req.limit);
  if (auto hit = results_.Get(key, revision)) return std::move(*hit);

  std::optional<std::string> facets_json;
  int64_t exact_total = -1;
  std::string facet_key;
  if (req.any_facet()) {
    facet_key = FacetCacheKey(req);
    if (auto hit = facets_.Get(facet_key, revision)) {
      const size_t bar = hit->find('|');
      exact_total = std::stoll(hit->substr(0, bar));
      facets_json = hit->substr(bar + 1);
    }
  }
  AGORA_ASSIGN_OR_RETURN(SearchResult r, searcher_.Search(req, offset, req.any_facet() && !facets_json));
  const bool cacheable = r.revision == revision || !facets_json;
  if (r.facets) {
    facets_json = RenderFacets(req, *r.facets, *r.categories);
    exact_total = r.total;
    facets_.Put(facet_key, std::to_string(r.total) + "|" + *facets_json, r.revision);
  }

  std::string body;
  size_t size = 160;
  for (const auto& d : r.docs) size += d.size() + 1;
  body.reserve(size + (facets_json ? facets_json->size() : 0));
  body += "{\"data\":[";
  for (size_t i = 0; i < r.docs.size(); ++i) {
    if (i > 0) body += ',';
    body += r.docs[i];
  }
  body += "],\"next_cursor\":";
  if (r.more) {
    const int next = offset + static_cast<int>(r.docs.size());
    body += Quote(cursors_.Encode(boost::json::object{{"o", next}, {"h", hash}}));
  } else {
    body += "null";
  }
  body += ",\"total\":" + std::to_string(exact_total >= 0 ? exact_total : r.total);
  body += r.match_all ? ",\"match\":\"all\"" : ",\"match\":\"any\"";
  body += ",\"spelling_suggestion\":";
  body += r.spelling_suggestion ? Quote(*r.spelling_suggestion) : "null";
  body += ",\"facets\":";
  body += facets_json ? *facets_json : "{}";
  body += '}';
  if (cacheable) results_.Put(std::move(key), body, r.revision);
  return body;
}

Result<std::string> SearchApi::Suggest(std::string_view raw_query) {
  AGORA_ASSIGN_OR_RETURN(const SuggestRequest req, ParseSuggestRequest(raw_query));
  const uint64_t revision = indexer_.revision();
  std::string key = "suggest;" + std::to_string(req.limit) + ";" + req.q;
  if (auto hit = results_.Get(key, revision)) return std::move(*hit);
  AGORA_ASSIGN_OR_RETURN(auto suggestions, searcher_.Suggest(req));
  boost::json::array data;
  for (const auto& s : suggestions) data.push_back(boost::json::object{{"text", s.text}, {"count", s.count}});
  std::string body = boost::json::serialize(boost::json::object{{"data", std::move(data)}, {"next_cursor", nullptr}});
  results_.Put(std::move(key), body, revision);
  return body;
}

void AddRoutes(http::App& app, SearchApi& api, http::Execution execution) {
  auto search = http::MakeRoute(http::Method::kGet, "/v1/search", execution, [&api](http::Request& req) {
    auto body = api.Search(req.query);
    // Answers change with the index (every commit): a short public max-age,
    // and a validator for revalidation.
    return body.ok() ? http::Conditional(req, JsonBody(std::move(*body)), "public, max-age=5")
                     : ProblemFor(req, body.error());
  });
  search.summary = "Search active listings";
  app.Add(std::move(search));
  auto suggest = http::MakeRoute(http::Method::kGet, "/v1/search/suggest", execution, [&api](http::Request& req) {
    auto body = api.Suggest(req.query);
    return body.ok() ? http::Conditional(req, JsonBody(std::move(*body)), "public, max-age=60")
                     : ProblemFor(req, body.error());
  });
  suggest.summary = "Complete the last word of a search";
  app.Add(std::move(suggest));
}

}  // namespace agora::search
