// Search's HTTP adapter: parses and validates the query string, answers from
// the result cache or the index, renders the JSON body. SearchApi holds the
// logic without HTTP types so tests and the benchmark can call it directly.
#pragma once

#include <string>
#include <string_view>

#include "core/crypto/cursor.h"
#include "core/http/app.h"
#include "core/result.h"
#include "services/search/domain/result_cache.h"
#include "services/search/index/index.h"

namespace agora::search {

class SearchApi {
 public:
  SearchApi(const Indexer& indexer, Searcher& searcher, ResultCache& results, ResultCache& facets,
            const crypto::CursorCodec& cursors)
      : indexer_(indexer), searcher_(searcher), results_(results), facets_(facets), cursors_(cursors) {}

  // The JSON body for GET /v1/search?<raw_query>, or kInvalidArgument
  // (validation, invalid-cursor) / kUnavailable.
  Result<std::string> Search(std::string_view raw_query);
  // The JSON body for GET /v1/search/suggest?<raw_query>.
  Result<std::string> Suggest(std::string_view raw_query);

 private:
  const Indexer& indexer_;
  Searcher& searcher_;
  ResultCache& results_;
  ResultCache& facets_;
  const crypto::CursorCodec& cursors_;
};

// GET /v1/search and GET /v1/search/suggest, public, run where `execution` says.
void AddRoutes(http::App& app, SearchApi& api, http::Execution execution);

}  // namespace agora::search
