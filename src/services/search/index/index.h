// The search index on disk: its folder layout, the single writer that
// applies catalog events, the readers that answer queries, and a full
// rebuild. Internal to the search service (module.h is its public face).
//
// Layout: <root>/CURRENT names the active folder ("index-000003"); folders
// are <root>/index-NNNNNN/. Reindex builds the next folder and replaces
// CURRENT atomically; a running Indexer notices within ~500 ms, switches to
// it and catches up from the catalog outbox from the new folder's
// catalog_seq.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <xapian.h>

#include "core/events/events.h"
#include "core/result.h"
#include "services/catalog/client.h"
#include "services/search/domain/query.h"
#include "services/search/index/document.h"

namespace agora::search {

// The folder CURRENT names, or kNotFound when there is no CURRENT.
Result<std::string> ReadCurrent(const std::filesystem::path& root);
// Replaces CURRENT with `name` (temp file, fsync, rename).
Status WriteCurrent(const std::filesystem::path& root, const std::string& name);
// "index-%06d" one above the highest existing folder number.
std::string NextIndexName(const std::filesystem::path& root);

// What readers need to follow the writer: the committed revision, the folder
// and the category names.
// The packed facet key of every document by docid, in memory: counting a
// match is then one array read instead of a value-slot read (which measured
// ~1 us per document). Entries carry kFacetPresent; 0 = not known here (the
// spy then reads the value slot).
using FacetTable = std::vector<uint32_t>;
inline constexpr uint32_t kFacetPresent = 0x80;  // in the price-bucket byte
uint32_t FacetWord(const FacetKey& key);

// The rendered hit (the document data: listing JSON without description,
// with snippet) of every document by docid, in memory, so a hit costs no
// Xapian get_document (measured ~35 % of an uncached two-word query).
//
// Shared between snapshots without copying the strings: the table is a
// vector of chunks of 256 entries, each entry an immutable shared string.
// Publishing copies the chunk pointers (400 for 100,000 documents); the
// writer copies a chunk (256 pointers) before changing it when a published
// snapshot still holds it. Bounded in bytes: beyond `max_bytes` new entries
// are not kept and readers fall back to get_data.
class HitTable {
 public:
  static constexpr size_t kChunkBits = 8;
  static constexpr size_t kChunkSize = size_t{1} << kChunkBits;
  // Per entry beyond the string's characters: the shared string, its control
  // block and the chunk slot.
  static constexpr size_t kEntryOverhead = 64;
  using Entry = std::shared_ptr<const std::string>;

  explicit HitTable(size_t max_bytes = 0) : max_bytes_(max_bytes) {}

  // The rendered hit of `docid`, or nullptr when the table does not hold it.
  const std::string* Find(uint32_t docid) const {
    const size_t c = docid >> kChunkBits;
    if (c >= chunks_.size() || !chunks_[c]) return nullptr;
    return (*chunks_[c])[docid & (kChunkSize - 1)].get();
  }
  // Writer only. Holds `data` for `docid` (or forgets it when `data` is
  // null), unless that would pass the byte bound: then forgets it.
  void Set(uint32_t docid, Entry data);
  size_t bytes() const { return bytes_; }
  size_t entries() const { return entries_; }
  size_t max_bytes() const { return max_bytes_; }

 private:
  using Chunk = std::array<Entry, kChunkSize>;
  std::vector<std::shared_ptr<Chunk>> chunks_;
  size_t bytes_ = 0;
  size_t entries_ = 0;
  size_t max_bytes_ = 0;
};

struct IndexSnapshot {
  uint64_t revision = 0;
  std::filesystem::path path;
  // The Xapian revision the tables below describe: a reader whose database
  // is at another revision (it reopened between a commit and its publication)
  // reads values and document data from Xapian instead.
  Xapian::rev xapian_revision = 0;
  std::shared_ptr<const CategoryTable> categories;
  std::shared_ptr<const FacetTable> facets;
  std::shared_ptr<const HitTable> hits;
};

struct IndexerOptions {
  std::filesystem::path root;  // <data_dir>/search
  // Commit at most this long after the first uncommitted change...
  std::chrono::milliseconds commit_interval{100};
  // ...or after this many changes, whichever comes first.
  size_t commit_changes = 1000;
  // Events waiting to be applied; beyond, Enqueue refuses (the bus retries).
  size_t max_queue = 50000;
  // How often CURRENT is re-read to follow a rebuild.
  std::chrono::milliseconds current_check{500};
  // Outbox events re-read below the stored catalog_seq on catch-up: outbox
  // seq is insert order, not commit order, on PostgreSQL.
  int64_t catch_up_window = 1000;
  // Memory for the hit table (rendered hits by docid); documents beyond it
  // are read from Xapian. 100,000 demo listings take ~75 MB.
  size_t hit_table_bytes = 128u << 20;
};

// The one writer of the index. A thread owns the WritableDatabase: it first
// catches up from catalog.EventsAfter(), then applies queued bus events,
// committing with the last applied catalog seq in the metadata. Readers
// follow via snapshot(). Enqueue and the accessors are thread-safe.
class Indexer {
 public:
  // Opens (creating if missing) the index CURRENT names under options.root.
  static Result<std::unique_ptr<Indexer>> Open(IndexerOptions options, catalog::CatalogClient& catalog);
  ~Indexer();  // Stop()s

  // Queues a catalog event; kUnavailable when the queue is full. Events of
  // other sources are accepted and ignored.
  Status Enqueue(events::Event event);
  void Start();
  // Applies what is queued, commits and stops the thread. Idempotent.
  void Stop();

  uint64_t revision() const { return revision_.load(std::memory_order_acquire); }
  std::shared_ptr<const IndexSnapshot> snapshot() const;
  // True once the initial catch-up from the outbox has finished.
  bool caught_up() const { return caught_up_flag_.load(); }
  int64_t catalog_seq() const { return committed_seq_.load(); }
  int64_t doc_count() const { return doc_count_.load(); }
  // Events received but not yet committed.
  int64_t lag() const;
  // A persistent failure (index unwritable), or Ok.
  Status health() const;

  // Blocks until catch-up is done and every event received so far is
  // committed and visible, or `timeout` passes.
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  Indexer(IndexerOptions options, catalog::CatalogClient& catalog);
  Status OpenFolder(const std::string& name, bool load_tables = true);  // writer thread (or Open)
  void Loop();
  void CatchUpStep();
  void Apply(const events::Event& e);
  void ApplyListing(const boost::json::object& payload, int64_t seq);
  void ApplyInventory(const boost::json::object& payload);
  void ApplyCategory(const std::string& type, const boost::json::object& payload, int64_t seq);
  void Commit();
  void CheckCurrent();
  void Publish();

  const IndexerOptions options_;
  catalog::CatalogClient& catalog_;

  // Writer-thread state.
  std::unique_ptr<Xapian::WritableDatabase> db_;
  std::string folder_;
  std::unique_ptr<Xapian::TermGenerator> tg_;
  CategoryTable categories_;
  bool categories_dirty_ = false;
  FacetTable facet_table_;  // by docid
  HitTable hit_table_;
  // Updates the facet and hit tables for `docid` (`doc` null: deleted).
  void SetFacet(Xapian::docid docid, const Xapian::Document* doc);
  void LoadTables();
  int64_t applied_seq_ = 0;   // highest catalog seq applied (committed at the next commit)
  int64_t catch_up_pos_ = 0;  // next EventsAfter position while catching up
  size_t pending_changes_ = 0;
  uint64_t pending_events_ = 0;  // taken from the queue, not yet committed
  std::optional<std::chrono::steady_clock::time_point> first_pending_;
  std::chrono::steady_clock::time_point next_current_check_{};

  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the writer
  std::condition_variable idle_cv_;  // wakes WaitIdle
  std::deque<events::Event> queue_;  // GUARDED_BY(mu_)
  uint64_t received_ = 0;            // GUARDED_BY(mu_)
  uint64_t committed_events_ = 0;    // GUARDED_BY(mu_): taken and committed
  bool caught_up_ = false;           // GUARDED_BY(mu_)
  bool stopping_ = false;            // GUARDED_BY(mu_)
  Status health_;                    // GUARDED_BY(mu_)
  std::shared_ptr<const IndexSnapshot> snapshot_;  // GUARDED_BY(mu_)

  std::atomic<uint64_t> revision_{1};
  std::atomic<bool> caught_up_flag_{false};
  std::atomic<int64_t> committed_seq_{0};
  std::atomic<int64_t> doc_count_{0};
  std::thread thread_;
};

struct SearchResult {
  uint64_t revision = 0;
  std::vector<std::string> docs;  // JSON objects, in order
  int64_t total = 0;
  bool exact_total = false;
  bool match_all = true;  // false: fell back to "any word"
  bool more = false;      // a next page exists within the result window
  std::optional<std::string> spelling_suggestion;
  std::optional<FacetCounts> facets;
  std::shared_ptr<const CategoryTable> categories;
};

struct Suggestion {
  std::string text;
  int64_t count = 0;
};

// Answers queries against the Indexer's latest committed revision. Keeps a
// pool of per-thread Xapian::Database handles (a Database is not
// thread-safe), reopened when the revision moves. Thread-safe.
class Searcher {
 public:
  explicit Searcher(const Indexer& indexer);
  ~Searcher();

  // One page from `offset`. With `count_facets`, every match is visited
  // (exact total, facet counts filled). kUnavailable when the index cannot be
  // read.
  Result<SearchResult> Search(const SearchRequest& request, int offset, bool count_facets);
  // Completions of the last word from title words, most frequent first.
  Result<std::vector<Suggestion>> Suggest(const SuggestRequest& request);

 private:
  struct Reader;
  std::unique_ptr<Reader> Acquire();
  void Release(std::unique_ptr<Reader> reader);
  Result<SearchResult> SearchOnce(Reader& reader, const SearchRequest& request, int offset, bool count_facets);

  const Indexer& indexer_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Reader>> pool_;  // GUARDED_BY(mu_)
};

struct RebuildStats {
  int64_t listings = 0;
  int64_t indexed_active = 0;
  double seconds = 0;
};

// Builds a fresh index folder under `root` from catalog.ListingsAfter (pages
// of 1,000), recording catalog.LastEventSeq() read before the first page,
// then switches CURRENT to it. Old folders nobody holds open are removed.
Result<RebuildStats> Rebuild(const std::filesystem::path& root, catalog::CatalogClient& catalog);

}  // namespace agora::search
