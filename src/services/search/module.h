// Wiring of the search service: the product search read model (CQRS) on a
// Xapian index under <data_dir>/search, fed by catalog events, answering
// GET /v1/search and GET /v1/search/suggest. Used by `agora serve`, and
// Reindex by `agora search reindex` and `agora seed-demo`.
//
// A catalog change is searchable within commit_interval plus the outbox
// relay's latency (well under a second). Xapian stays behind this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/crypto/cursor.h"
#include "core/events/events.h"
#include "core/http/app.h"
#include "core/metrics.h"
#include "core/result.h"
#include "services/catalog/client.h"

namespace agora::search {

struct ModuleOptions {
  std::string data_dir = "./data";
  // The writer commits at most this long after the first uncommitted change
  // (or after 1,000 changes): the bound on how stale a search can be.
  std::chrono::milliseconds commit_interval{100};
  // Memory for rendered answers and facet counts, per index revision.
  size_t cache_bytes = 32u << 20;
};

class Module {
 public:
  // Opens (creating if missing) the index under data_dir/search.
  static Result<std::unique_ptr<Module>> Open(const ModuleOptions& options, catalog::CatalogClient& catalog,
                                              crypto::CursorCodec cursors, const Clock& clock);
  ~Module();

  void AddRoutes(http::App& app);
  // Subscribes consumer "search.indexer" (every type, source "catalog") to
  // `bus`. Call before bus.Start().
  void Subscribe(events::Bus& bus);
  // Starts the writer (it first catches up from the catalog outbox) and
  // exports metrics: indexed documents, index lag in events, cache hits and
  // misses.
  void Start(metrics::Registry& metrics);
  // Stops the writer after a final commit. Idempotent.
  void Stop();
  // Ok once the index is open, writable and caught up with the outbox.
  Status Ready();
  // For tests: blocks until everything received so far is committed and
  // visible, or timeout.
  bool WaitIdleForTest(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  explicit Module(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct ReindexStats {
  int64_t listings = 0;
  int64_t indexed_active = 0;
  double seconds = 0;
};

// Builds a fresh index from catalog.ListingsAfter (pages of 1,000), recording
// catalog.LastEventSeq() read BEFORE the first page as its position, then
// switches CURRENT to it (a running server follows within ~500 ms and
// catches up from that position).
Result<ReindexStats> Reindex(const std::string& data_dir, catalog::CatalogClient& catalog);

}  // namespace agora::search
