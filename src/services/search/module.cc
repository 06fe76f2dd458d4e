#include "services/search/module.h"

#include <filesystem>

#include "services/catalog/events.h"
#include "services/search/api/handlers.h"
#include "services/search/domain/result_cache.h"
#include "services/search/index/index.h"

namespace agora::search {

struct Module::Impl {
  Impl(const ModuleOptions& o, crypto::CursorCodec c)
      : options(o), cursors(std::move(c)), results(o.cache_bytes - o.cache_bytes / 4), facets(o.cache_bytes / 4) {}

  ModuleOptions options;
  crypto::CursorCodec cursors;
  // Rendered pages (3/4 of the budget) and facet counts per matching set
  // (1/4), so paging through a faceted search counts once.
  ResultCache results;
  ResultCache facets;
  std::unique_ptr<Indexer> indexer;
  std::unique_ptr<Searcher> searcher;
  std::unique_ptr<SearchApi> api;
  bool started = false;
};

Module::Module(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Module::~Module() { Stop(); }

Result<std::unique_ptr<Module>> Module::Open(const ModuleOptions& options, catalog::CatalogClient& catalog,
                                             crypto::CursorCodec cursors, const Clock& clock) {
  auto impl = std::make_unique<Impl>(options, std::move(cursors));
  IndexerOptions io;
  io.root = std::filesystem::path(options.data_dir) / "search";
  io.commit_interval = options.commit_interval;
  AGORA_ASSIGN_OR_RETURN(impl->indexer, Indexer::Open(io, catalog));
  impl->searcher = std::make_unique<Searcher>(*impl->indexer);
  impl->api = std::make_unique<SearchApi>(*impl->indexer, *impl->searcher, impl->results, impl->facets, impl->cursors);
  return std::unique_ptr<Module>(new Module(std::move(impl)));
}

void Module::AddRoutes(http::App& app) {
  // A cached answer takes ~10 us, but a miss 0.7-1 ms for a two-word query
  // and 3-5 ms for a faceted browse of a large category (100k listings):
  // too long to hold an I/O thread, so the blocking pool runs them.
  search::AddRoutes(app, *impl_->api, http::Execution::kBlocking);
}

void Module::Subscribe(events::Bus& bus) {
  Indexer* indexer = impl_->indexer.get();
  bus.Subscribe("search.indexer", "", [indexer](const events::Event& e) -> Status {
    if (e.source != catalog::event_types::kSource) return Ok();
    // A full queue refuses; the bus redelivers after a backoff.
    return indexer->Enqueue(e);
  });
}

void Module::Start(metrics::Registry& metrics) {
  if (impl_->started) return;
  impl_->started = true;
  Indexer* indexer = impl_->indexer.get();
  metrics.NewGauge("agora_search_indexed_documents", "Listings in the search index (every status).",
                   [indexer] { return static_cast<double>(indexer->doc_count()); });
  metrics.NewGauge("agora_search_index_lag_events", "Catalog events received but not yet committed to the index.",
                   [indexer] { return static_cast<double>(indexer->lag()); });
  metrics.NewGauge("agora_search_catalog_seq", "The catalog outbox sequence the index has committed.",
                   [indexer] { return static_cast<double>(indexer->catalog_seq()); });
  const ResultCache* results = &impl_->results;
  const ResultCache* facets = &impl_->facets;
  metrics.AddCollector([results, facets](std::string& out) {
    out += "# HELP agora_search_cache_lookups_total Search cache lookups, by cache and outcome.\n";
    out += "# TYPE agora_search_cache_lookups_total counter\n";
    auto line = [&out](const char* cache, const char* outcome, uint64_t v) {
      out += "agora_search_cache_lookups_total{cache=\"";
      out += cache;
      out += "\",outcome=\"";
      out += outcome;
      out += "\"} " + std::to_string(v) + "\n";
    };
    line("results", "hit", results->hits());
    line("results", "miss", results->misses());
    line("facets", "hit", facets->hits());
    line("facets", "miss", facets->misses());
    out += "# HELP agora_search_cache_bytes Memory held by the search caches.\n";
    out += "# TYPE agora_search_cache_bytes gauge\n";
    out += "agora_search_cache_bytes{cache=\"results\"} " + std::to_string(results->bytes()) + "\n";
    out += "agora_search_cache_bytes{cache=\"facets\"} " + std::to_string(facets->bytes()) + "\n";
  });
  indexer->Start();
}

void Module::Stop() {
  if (impl_->indexer) impl_->indexer->Stop();
}

Status Module::Ready() {
  AGORA_RETURN_IF_ERROR(impl_->indexer->health());
  if (!impl_->indexer->caught_up()) return Error::Unavailable("the search index is catching up with the catalog");
  return Ok();
}

bool Module::WaitIdleForTest(std::chrono::milliseconds timeout) { return impl_->indexer->WaitIdle(timeout); }

Result<ReindexStats> Reindex(const std::string& data_dir, catalog::CatalogClient& catalog) {
  AGORA_ASSIGN_OR_RETURN(RebuildStats s, Rebuild(std::filesystem::path(data_dir) / "search", catalog));
  return ReindexStats{s.listings, s.indexed_active, s.seconds};
}

}  // namespace agora::search
