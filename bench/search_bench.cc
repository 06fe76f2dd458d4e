// Search micro benchmark: builds 100,000 synthetic listings in a temporary
// index and reports indexing speed, query throughput (two words, uncached;
// with three facets, uncached; cached) and latency percentiles.
// Run: build/<dir>/bench/search_bench [listings] [seconds per phase]
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "services/search/api/handlers.h"
#include "services/search/index/fake_catalog_for_test.h"
#include "services/search/index/index.h"

namespace {

using namespace agora;
using namespace agora::search;
using Clock = std::chrono::steady_clock;

// Serves a fixed list of listings; no outbox.
class StaticCatalog : public CatalogForSearch {
 public:
  std::vector<catalog::Listing> listings;  // sorted by id
  std::vector<catalog::Category> categories;
  Result<std::vector<catalog::Category>> Categories() override { return categories; }
  Result<std::vector<catalog::Listing>> ListingsAfter(std::string_view after, int limit) override {
    auto it = std::upper_bound(listings.begin(), listings.end(), after,
                               [](std::string_view a, const catalog::Listing& l) { return a < l.id; });
    std::vector<catalog::Listing> out;
    for (; it != listings.end() && static_cast<int>(out.size()) < limit; ++it) out.push_back(*it);
    return out;
  }
  Result<std::vector<events::Event>> EventsAfter(int64_t, int) override { return std::vector<events::Event>{}; }
  Result<int64_t> LastEventSeq() override { return int64_t{0}; }
};

std::vector<std::string> MakeVocabulary(size_t n, std::mt19937& rng) {
  static const char* kSyl[] = {"ka", "lo", "mi", "ra", "ten", "por", "vel", "sun", "dra", "qui", "bel", "mor",
                               "tis", "an", "ex", "ul", "cor", "fin", "gra", "pha", "ste", "zo", "nu", "lex"};
  std::vector<std::string> v;
  std::set<std::string> seen;
  while (v.size() < n) {
    std::string w;
    int syl = 2 + static_cast<int>(rng() % 2);
    for (int i = 0; i < syl; ++i) w += kSyl[rng() % 24];
    if (seen.insert(w).second) v.push_back(w);
  }
  return v;
}

struct Zipf {
  std::vector<double> cdf;
  explicit Zipf(size_t n) {
    double sum = 0;
    for (size_t i = 1; i <= n; ++i) cdf.push_back(sum += 1.0 / static_cast<double>(i));
    for (auto& c : cdf) c /= sum;
  }
  size_t operator()(std::mt19937& rng) const {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return static_cast<size_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
  }
};

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Runs `fn(i)` on `threads` threads for `seconds`; returns calls/s and fills latencies (µs).
template <class F>
double Throughput(int threads, double seconds, F fn, std::vector<double>* latencies_us) {
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat(threads);
  std::vector<int64_t> counts(threads);
  std::vector<std::thread> ts;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      int64_t i = t * 7919;
      while (!stop.load(std::memory_order_relaxed)) {
        const auto a = Clock::now();
        fn(i++);
        lat[t].push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
        ++counts[t];
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  int64_t total = 0;
  for (int t = 0; t < threads; ++t) {
    total += counts[t];
    if (latencies_us) latencies_us->insert(latencies_us->end(), lat[t].begin(), lat[t].end());
  }
  return static_cast<double>(total) / elapsed;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  std::mt19937 rng(42);
  auto vocab = MakeVocabulary(5000, rng);
  Zipf zipf(vocab.size());

  StaticCatalog cat;
  for (int r = 0; r < 20; ++r) {
    cat.categories.push_back({"cat_r" + std::to_string(r), "", "Root " + vocab[r], "r" + std::to_string(r)});
    for (int c = 0; c < 10; ++c) {
      cat.categories.push_back({"cat_r" + std::to_string(r) + "c" + std::to_string(c), "cat_r" + std::to_string(r),
                                "Leaf " + vocab[100 + r * 10 + c], "l" + std::to_string(r * 10 + c)});
    }
  }
  for (int i = 0; i < n; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "prd_%08d", i);
    std::string title;
    for (int w = 0, k = 3 + static_cast<int>(rng() % 4); w < k; ++w) title += (w ? " " : "") + vocab[zipf(rng)];
    const int r = static_cast<int>(rng() % 20), c = static_cast<int>(rng() % 10);
    auto l = TestListing(id, title, static_cast<int64_t>(std::exp(std::uniform_real_distribution<double>(4, 12)(rng))),
                         "cat_r" + std::to_string(r) + "c" + std::to_string(c), kConditionNames[rng() % 5], rng() % 4);
    l.description.clear();
    for (int w = 0, k = 25 + static_cast<int>(rng() % 20); w < k; ++w) l.description += (w ? " " : "") + vocab[zipf(rng)];
    l.attributes = {{"brand", vocab[rng() % 50]}, {"color", vocab[50 + rng() % 10]}};
    l.created_at_ms += i;
    l.published_at_ms = l.created_at_ms;
    l.category_path = {{"cat_r" + std::to_string(r), "Root " + vocab[r]},
                       {l.category_id, "Leaf " + vocab[100 + r * 10 + c]}};
    cat.listings.push_back(std::move(l));
  }

  // argv[3]: keep the index in this folder and reuse it on the next run.
  TempDir tmp;
  const std::filesystem::path base = argc > 3 ? std::filesystem::path(argv[3]) : tmp.path();
  struct {
    std::filesystem::path p;
    const std::filesystem::path& path() const { return p; }
  } dir{base};
  const auto root = dir.path() / "search";
  const bool reuse = std::filesystem::exists(root / "CURRENT");

  // Indexing without spelling data (the cost spelling adds).
  if (!reuse) {
    Xapian::WritableDatabase db((dir.path() / "nospell").string(), Xapian::DB_CREATE | Xapian::DB_NO_SYNC);
    auto tg = NewTermGenerator(nullptr);
    CategoryTable table;
    const auto a = Clock::now();
    int k = 0;
    for (const auto& l : cat.listings) {
      db.add_document(BuildDocument(catalog::ListingEventPayload(l), table, tg).value());
      if (++k % 2000 == 0) db.commit();
    }
    db.commit();
    const double s = std::chrono::duration<double>(Clock::now() - a).count();
    std::printf("index without spelling: %d docs in %.2f s = %.0f docs/s\n", n, s, n / s);
  }
  std::filesystem::remove_all(dir.path() / "nospell");

  auto stats = reuse ? Result<RebuildStats>(RebuildStats{n, n, 1}) : Rebuild(root, cat);
  if (!stats.ok()) {
    std::fprintf(stderr, "rebuild failed: %s\n", stats.error().message.c_str());
    return 1;
  }
  if (!reuse) std::printf("rebuild (spelling on, fsync): %lld docs in %.2f s = %.0f docs/s\n",
              static_cast<long long>(stats->listings), stats->seconds, stats->listings / stats->seconds);
  uintmax_t bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  std::printf("index size: %.1f MB\n", bytes / 1e6);

  IndexerOptions io;
  io.root = root;
  auto indexer = std::move(Indexer::Open(io, cat).value());
  indexer->Start();
  indexer->WaitIdle(std::chrono::seconds(10));
  Searcher searcher(*indexer);
  crypto::CursorCodec cursors(std::string(32, 'k'));
  ResultCache no_results(0), no_facets(0), results(24u << 20), facets(8u << 20);
  SearchApi uncached(*indexer, searcher, no_results, no_facets, cursors);
  SearchApi cached(*indexer, searcher, results, facets, cursors);

  // Two-word queries over mid-frequency words (ranks 10..300).
  std::vector<std::string> queries;
  for (int i = 0; i < 500; ++i) {
    queries.push_back("q=" + vocab[10 + rng() % 290] + "+" + vocab[10 + rng() % 290]);
  }
  int64_t matches = 0, any = 0;
  for (const auto& q : queries) {
    auto body = uncached.Search(q + "&facets=all");
    auto v = boost::json::parse(*body).as_object();
    matches += v.at("total").as_int64();
    any += v.at("match") == "any";
  }
  std::printf("queries: %zu two-word, mean exact matches %.0f, %lld fell back to any-word\n", queries.size(),
              static_cast<double>(matches) / queries.size(), static_cast<long long>(any));

  std::vector<std::string> browse;
  for (int r = 0; r < 20; ++r) browse.push_back("category=cat_r" + std::to_string(r));
  auto run = [&](const char* name, SearchApi& api, const std::string& suffix, int threads,
                 const std::vector<std::string>* list = nullptr) {
    const auto& qs = list ? *list : queries;
    std::vector<double> lat;
    const double qps = Throughput(threads, seconds, [&](int64_t i) {
      auto r = api.Search(qs[static_cast<size_t>(i) % qs.size()] + suffix);
      if (!r.ok()) std::abort();
    }, &lat);
    std::printf("%-44s %d thr: %8.0f q/s  p50 %6.0f us  p99 %6.0f us\n", name, threads, qps, Percentile(lat, 0.5),
                Percentile(lat, 0.99));
  };
  // Baseline: bare Xapian on the same index, one thread (QueryParser, AND, top 20).
  {
    Xapian::Database db((root / ReadCurrent(root).value()).string());
    Xapian::QueryParser qp;
    qp.set_stemmer(Xapian::Stem("en"));
    qp.set_stemming_strategy(Xapian::QueryParser::STEM_ALL_Z);
    qp.set_default_op(Xapian::Query::OP_AND);
    Xapian::Enquire enq(db);
    for (int with_data = 0; with_data < 2; ++with_data) {
      std::vector<double> lat;
      const double qps = Throughput(1, seconds, [&](int64_t i) {
        const std::string& q = queries[static_cast<size_t>(i) % queries.size()];
        std::string text = q.substr(2);
        std::replace(text.begin(), text.end(), '+', ' ');
        enq.set_query(qp.parse_query(text, 0));
        Xapian::MSet m = enq.get_mset(0, 20);
        if (with_data) {
          size_t bytes = 0;
          for (auto it = m.begin(); it != m.end(); ++it) bytes += it.get_document().get_data().size();
          if (bytes == 1) std::abort();
        }
      }, &lat);
      std::printf("%-44s 1 thr: %8.0f q/s  p50 %6.0f us  p99 %6.0f us\n",
                  with_data ? "bare Xapian AND top-20 + get_data" : "bare Xapian AND top-20 (no data)", qps,
                  Percentile(lat, 0.5), Percentile(lat, 0.99));
    }
  }
  // Experiments: what exact counting costs in bare Xapian.
  {
    Xapian::Database db((root / ReadCurrent(root).value()).string());
    Xapian::QueryParser qp;
    qp.set_stemmer(Xapian::Stem("en"));
    qp.set_stemming_strategy(Xapian::QueryParser::STEM_ALL_Z);
    qp.set_default_op(Xapian::Query::OP_AND);
    struct CountSpy : Xapian::MatchSpy {
      uint64_t n = 0;
      void operator()(const Xapian::Document& d, double) override { n += d.get_value(kSlotFacet).size(); }
    };
    const char* names[] = {"count all, BM25, spy", "count all, BoolWeight, spy", "count all, BoolWeight, no spy",
                           "category newest top-20 no count", "category newest count+spy"};
    for (int mode = 0; mode < 5; ++mode) {
      Xapian::Enquire enq(db);
      CountSpy spy;
      if (mode == 1 || mode == 2 || mode >= 3) enq.set_weighting_scheme(Xapian::BoolWeight());
      if (mode >= 3) enq.set_sort_by_value(kSlotPublished, true);
      if (mode != 2 && mode != 3) enq.add_matchspy(&spy);
      std::vector<double> lat;
      const double qps = Throughput(1, seconds, [&](int64_t i) {
        if (mode >= 3) {
          enq.set_query(Xapian::Query("Ccat_r" + std::to_string(i % 20)));
          Xapian::MSet m = enq.get_mset(0, 20, mode == 4 ? db.get_doccount() : 0);
          return;
        }
        const std::string& q = queries[static_cast<size_t>(i) % queries.size()];
        std::string text = q.substr(2);
        std::replace(text.begin(), text.end(), '+', ' ');
        enq.set_query(qp.parse_query(text, 0));
        Xapian::MSet m = enq.get_mset(0, mode == 0 ? 20 : 0, db.get_doccount());
      }, &lat);
      std::printf("%-44s 1 thr: %8.0f q/s  p50 %6.0f us  p99 %6.0f us\n", names[mode], qps, Percentile(lat, 0.5),
                  Percentile(lat, 0.99));
    }
  }
  for (int threads : {1, 2}) {
    run("two-word top-20, uncached", uncached, "", threads);
    run("two-word top-20 + 3 facets (exact), uncached", uncached, "&facets=all", threads);
    run("no q, category, newest + 3 facets, uncached", uncached, "&facets=all", threads, &browse);
  }
  // Warm the cache with every query, then measure hits.
  for (const auto& q : queries) (void)cached.Search(q + "&facets=all");
  run("two-word + 3 facets, cached", cached, "&facets=all", 2);
  std::printf("cache: %llu hits, %llu misses, %.1f MB\n", static_cast<unsigned long long>(results.hits()),
              static_cast<unsigned long long>(results.misses()), results.bytes() / 1e6);
  std::printf("RSS: %.0f MB\n", RssKb() / 1024.0);
  indexer->Stop();
  return 0;
}
