#include "services/search/index/index.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <thread>

#include <boost/json.hpp>

#include "services/search/index/fake_catalog_for_test.h"

namespace agora::search {
namespace {

using namespace std::chrono_literals;

class IndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_.AddCategory("cat_root", "", "Electronics");
    catalog_.AddCategory("cat_phones", "cat_root", "Phones");
    catalog_.AddCategory("cat_laptops", "cat_root", "Laptops");
    catalog_.AddCategory("cat_books", "", "Books");
  }

  IndexerOptions Options() {
    IndexerOptions o;
    o.root = dir_.path() / "search";
    o.commit_interval = 20ms;
    o.current_check = 50ms;
    return o;
  }

  void OpenAndStart() {
    auto indexer = Indexer::Open(Options(), catalog_);
    ASSERT_TRUE(indexer.ok()) << indexer.error().message;
    indexer_ = std::move(*indexer);
    searcher_ = std::make_unique<Searcher>(*indexer_);
    indexer_->Start();
    ASSERT_TRUE(indexer_->WaitIdle(5s));
  }

  void Deliver(const events::Event& e) { ASSERT_TRUE(indexer_->Enqueue(e).ok()); }
  void Idle() { ASSERT_TRUE(indexer_->WaitIdle(5s)); }

  SearchResult Run(std::string_view raw, int offset = 0, bool facets = false) {
    auto req = ParseSearchRequest(raw);
    EXPECT_TRUE(req.ok()) << req.error().message;
    auto r = searcher_->Search(*req, offset, facets);
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }

  std::vector<std::string> Ids(const SearchResult& r) {
    std::vector<std::string> ids;
    for (const auto& d : r.docs) ids.emplace_back(boost::json::parse(d).at("id").as_string());
    return ids;
  }

  boost::json::object Doc(const SearchResult& r, size_t i) { return boost::json::parse(r.docs.at(i)).as_object(); }

  TempDir dir_;
  FakeCatalog catalog_;
  std::unique_ptr<Indexer> indexer_;
  std::unique_ptr<Searcher> searcher_;
};

TEST_F(IndexTest, AnOlderVersionNeverOverwritesANewerOne) {
  OpenAndStart();
  auto l = TestListing("prd_1", "Blue phone", 1000, "cat_phones");
  auto v1 = catalog_.Put(l);
  l.title = "Green phone";
  l.description = "Like new.";
  auto v2 = catalog_.Put(l);
  Deliver(v2);
  Deliver(v1);  // reordered
  Deliver(v2);  // redelivered
  Idle();
  auto r = Run("q=phone");
  ASSERT_EQ(r.docs.size(), 1u);
  EXPECT_EQ(Doc(r, 0).at("title"), "Green phone");
  EXPECT_EQ(Doc(r, 0).at("version"), 2);
  EXPECT_TRUE(Run("q=blue").docs.empty());
}

TEST_F(IndexTest, ArchivedListingsDisappearAndOldEventsDoNotResurrectThem) {
  OpenAndStart();
  auto l = TestListing("prd_1", "Vintage camera", 5000, "cat_root");
  auto created = catalog_.Put(l);
  l.status = catalog::ListingStatus::kArchived;
  auto archived = catalog_.Put(l);
  Deliver(created);
  Idle();
  EXPECT_EQ(Run("q=camera").docs.size(), 1u);
  Deliver(archived);
  Deliver(created);
  Idle();
  EXPECT_TRUE(Run("q=camera").docs.empty());
  EXPECT_TRUE(Run("").docs.empty());
}

TEST_F(IndexTest, InventoryChangeFlipsInStock) {
  OpenAndStart();
  Deliver(catalog_.Put(TestListing("prd_1", "Laptop stand", 2500, "cat_laptops", "good", 1)));
  Idle();
  EXPECT_EQ(Run("in_stock=true").docs.size(), 1u);
  Deliver(catalog_.SetQuantity("prd_1", 0));
  Idle();
  EXPECT_TRUE(Run("in_stock=true").docs.empty());
  auto r = Run("in_stock=false");
  ASSERT_EQ(r.docs.size(), 1u);
  EXPECT_EQ(Doc(r, 0).at("in_stock"), false);
  EXPECT_EQ(Doc(r, 0).at("quantity"), 0);
  EXPECT_EQ(Doc(r, 0).at("version"), 2);
  // The text terms survive an inventory change.
  EXPECT_EQ(Run("q=stand").docs.size(), 1u);
}

TEST_F(IndexTest, CategoryFilterMatchesDescendants) {
  OpenAndStart();
  Deliver(catalog_.Put(TestListing("prd_1", "Smart phone", 30000, "cat_phones")));
  Deliver(catalog_.Put(TestListing("prd_2", "Gaming laptop", 90000, "cat_laptops")));
  Deliver(catalog_.Put(TestListing("prd_3", "Cook book", 1500, "cat_books")));
  Idle();
  auto root = Ids(Run("category=cat_root&sort=price_asc"));
  EXPECT_EQ(root, (std::vector<std::string>{"prd_1", "prd_2"}));
  EXPECT_EQ(Ids(Run("category=cat_phones")), (std::vector<std::string>{"prd_1"}));
  // Category names are searchable text.
  EXPECT_EQ(Ids(Run("q=electronics&sort=price_desc")), (std::vector<std::string>{"prd_2", "prd_1"}));
}

TEST_F(IndexTest, FallsBackToAnyWordWhenAllWordsMatchNothing) {
  OpenAndStart();
  Deliver(catalog_.Put(TestListing("prd_1", "Red bicycle", 20000, "cat_root")));
  Deliver(catalog_.Put(TestListing("prd_2", "Blue kettle", 3000, "cat_root")));
  Idle();
  auto all = Run("q=red+bicycle");
  EXPECT_TRUE(all.match_all);
  EXPECT_EQ(Ids(all), (std::vector<std::string>{"prd_1"}));
  auto any = Run("q=red+kettle");
  EXPECT_FALSE(any.match_all);
  EXPECT_EQ(any.docs.size(), 2u);
  EXPECT_FALSE(any.spelling_suggestion.has_value());
  // Stemming: "bicycles" finds "bicycle".
  EXPECT_EQ(Ids(Run("q=bicycles")), (std::vector<std::string>{"prd_1"}));
}

TEST_F(IndexTest, SuggestsASpellingWhenNothingMatches) {
  OpenAndStart();
  Deliver(catalog_.Put(TestListing("prd_1", "Telescope with tripod", 20000, "cat_root")));
  Idle();
  auto r = Run("q=telescpoe");
  EXPECT_TRUE(r.docs.empty());
  ASSERT_TRUE(r.spelling_suggestion.has_value());
  EXPECT_EQ(*r.spelling_suggestion, "telescope");
  EXPECT_FALSE(Run("q=telescope").spelling_suggestion.has_value());
}

TEST_F(IndexTest, FiltersAndPriceEdges) {
  OpenAndStart();
  int i = 0;
  for (int64_t price : {999, 1000, 2499, 2500, 49999, 50000}) {
    ++i;
    Deliver(catalog_.Put(TestListing("prd_" + std::to_string(i), "Item", price, "cat_root", i % 2 ? "new" : "fair")));
  }
  Idle();
  EXPECT_EQ(Run("min_price=1000&max_price=2500").docs.size(), 3u);  // inclusive
  EXPECT_EQ(Run("max_price=999").docs.size(), 1u);
  EXPECT_EQ(Run("min_price=50000").docs.size(), 1u);
  EXPECT_EQ(Run("condition=fair").docs.size(), 3u);
  EXPECT_EQ(Run("condition=fair,new").docs.size(), 6u);
  EXPECT_EQ(Run("currency=USD").docs.size(), 0u);
  EXPECT_EQ(Run("seller=usr_seller1").docs.size(), 6u);
  auto r = Run("facets=price", 0, true);
  ASSERT_TRUE(r.facets.has_value());
  EXPECT_EQ(r.facets->price[0], 1u);  // 999
  EXPECT_EQ(r.facets->price[1], 2u);  // 1000, 2499
  EXPECT_EQ(r.facets->price[2], 1u);  // 2500
  EXPECT_EQ(r.facets->price[5], 1u);  // 49999
  EXPECT_EQ(r.facets->price[6], 1u);  // 50000
}

TEST_F(IndexTest, FacetCountsAreExactAgainstBruteForce) {
  OpenAndStart();
  std::mt19937 rng(7);
  const char* cats[] = {"cat_phones", "cat_laptops", "cat_books", "cat_root"};
  const char* words[] = {"red", "blue", "green", "lamp", "phone", "chair"};
  for (int i = 0; i < 600; ++i) {
    auto l = TestListing("prd_" + std::to_string(1000 + i),
                         std::string(words[rng() % 6]) + " " + words[rng() % 6], static_cast<int64_t>(rng() % 80000),
                         cats[rng() % 4], kConditionNames[rng() % 5], rng() % 3);
    if (rng() % 10 == 0) l.status = catalog::ListingStatus::kDraft;
    Deliver(catalog_.Put(l));
  }
  Idle();
  auto r = Run("q=red&in_stock=true&limit=5", 0, true);
  ASSERT_TRUE(r.facets.has_value());
  FacetCounts expect;
  expect.category.assign(r.categories->ids.size(), 0);
  int64_t total = 0;
  for (const auto& l : catalog_.AllListings()) {
    if (l.status != catalog::ListingStatus::kActive || l.quantity <= 0) continue;
    if (l.title.find("red") == std::string::npos) continue;
    ++total;
    ++expect.category[r.categories->index_of.at(l.category_id)];
    ++expect.condition[ConditionIndex(l.condition)];
    ++expect.price[PriceBucket(l.price.amount)];
  }
  EXPECT_GT(total, 20);
  EXPECT_EQ(r.total, total);
  EXPECT_TRUE(r.exact_total);
  r.facets->category.resize(expect.category.size());
  EXPECT_EQ(r.facets->category, expect.category);
  EXPECT_EQ(r.facets->condition, expect.condition);
  EXPECT_EQ(r.facets->price, expect.price);
}

TEST_F(IndexTest, PagesDoNotOverlapAndStopAtTheWindow) {
  OpenAndStart();
  for (int i = 0; i < 25; ++i) {
    auto l = TestListing("prd_" + std::to_string(100 + i), "Mug", 100 + i, "cat_root");
    l.created_at_ms += i;
    Deliver(catalog_.Put(l));
  }
  Idle();
  auto p1 = Run("limit=10");
  auto p2 = Run("limit=10", 10);
  auto p3 = Run("limit=10", 20);
  EXPECT_TRUE(p1.more);
  EXPECT_TRUE(p2.more);
  EXPECT_FALSE(p3.more);
  EXPECT_EQ(p3.docs.size(), 5u);
  EXPECT_EQ(Ids(p1).front(), "prd_124");  // newest first
  EXPECT_EQ(Ids(p2).front(), "prd_114");
  EXPECT_EQ(p1.total, 25);
  // At the 1,000 window, no next page.
  EXPECT_FALSE(Run("limit=10", 990).more);
}

TEST_F(IndexTest, SuggestCompletesTheLastWordFromActiveTitles) {
  OpenAndStart();
  Deliver(catalog_.Put(TestListing("prd_1", "Phone case", 500, "cat_phones")));
  Deliver(catalog_.Put(TestListing("prd_2", "Phone charger", 900, "cat_phones")));
  Deliver(catalog_.Put(TestListing("prd_3", "Photo frame", 900, "cat_root")));
  auto draft = TestListing("prd_4", "Phonograph", 900, "cat_root");
  draft.status = catalog::ListingStatus::kDraft;
  Deliver(catalog_.Put(draft));
  Idle();
  SuggestRequest req;
  req.q = "red pho";
  req.words = {"red", "pho"};
  auto s = searcher_->Suggest(req);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[0].text, "red phone");
  EXPECT_EQ((*s)[0].count, 2);
  EXPECT_EQ((*s)[1].text, "red photo");
}

TEST_F(IndexTest, CatchesUpFromTheStoredSeqAfterReopening) {
  OpenAndStart();
  Deliver(catalog_.Put(TestListing("prd_1", "Desk lamp", 2000, "cat_root")));
  Idle();
  const int64_t seq = indexer_->catalog_seq();
  EXPECT_EQ(seq, catalog_.LastEventSeq().value());
  searcher_.reset();
  indexer_.reset();  // stops after a final commit
  // Published while the indexer was down: only the outbox has them.
  (void)catalog_.Put(TestListing("prd_2", "Floor lamp", 9000, "cat_root"));
  (void)catalog_.SetQuantity("prd_1", 0);
  catalog_.events_after_calls.clear();
  OpenAndStart();
  EXPECT_EQ(catalog_.events_after_calls.front(), std::max<int64_t>(0, seq - 1000));
  EXPECT_EQ(Run("q=lamp").docs.size(), 2u);
  EXPECT_EQ(Run("q=lamp&in_stock=false").docs.size(), 1u);
  EXPECT_EQ(indexer_->catalog_seq(), catalog_.LastEventSeq().value());
}

TEST_F(IndexTest, RebuildsFromScratchOnAnEmptyIndex) {
  for (int i = 0; i < 30; ++i) (void)catalog_.Put(TestListing("prd_" + std::to_string(i), "Kite", 700, "cat_root"));
  OpenAndStart();  // catch-up from seq 0 replays the whole outbox
  EXPECT_EQ(Run("q=kite&limit=100").docs.size(), 30u);
}

TEST_F(IndexTest, ReindexSwitchesARunningWriterToTheNewFolder) {
  OpenAndStart();
  Deliver(catalog_.Put(TestListing("prd_1", "Old kettle", 2000, "cat_root")));
  Idle();
  const std::string before = ReadCurrent(Options().root).value();
  auto ghost = TestListing("prd_ghost", "Ghost lantern", 700, "cat_root");
  Deliver(catalog_.Put(ghost));
  ghost.status = catalog::ListingStatus::kArchived;
  (void)catalog_.Put(ghost);  // archived, only the rebuild sees it
  // Made while nobody delivered events: only a rebuild (or catch-up) sees them.
  for (int i = 0; i < 50; ++i) {
    (void)catalog_.Put(TestListing("prd_r" + std::to_string(i), "Rebuilt teapot", 1000 + i, "cat_books"));
  }
  auto stats = Rebuild(Options().root, catalog_);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->listings, 52);
  EXPECT_EQ(stats->indexed_active, 51);
  const std::string after = ReadCurrent(Options().root).value();
  EXPECT_NE(before, after);
  // The writer follows CURRENT within current_check, then catches up.
  for (int i = 0; i < 200 && searcher_ && Run("q=teapot&limit=100").docs.size() != 50; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(Run("q=teapot&limit=100").docs.size(), 50u);
  // Catch-up replayed the ghost's creation: its tombstone keeps it archived.
  ASSERT_TRUE(indexer_->WaitIdle(5s));
  EXPECT_TRUE(Run("q=ghost").docs.empty());
  // The rebuild fed the spelling dictionary (words collected by the builder
  // thread; catch-up skipped these listings' events as not newer).
  auto typo = Run("q=teapto");
  ASSERT_TRUE(typo.spelling_suggestion.has_value());
  EXPECT_EQ(*typo.spelling_suggestion, "teapot");
  // Events after the rebuild land in the new folder.
  Deliver(catalog_.Put(TestListing("prd_new", "Fresh teapot", 500, "cat_books")));
  Idle();
  EXPECT_EQ(Run("q=teapot&limit=100").docs.size(), 51u);
  auto facets = Run("q=teapot&facets=category", 0, true);
  ASSERT_TRUE(facets.facets.has_value());
  EXPECT_EQ(facets.facets->category[facets.categories->index_of.at("cat_books")], 51u);
  EXPECT_EQ(facets.categories->names[facets.categories->index_of.at("cat_books")], "Books");
  for (int i = 0; i < 100 && std::filesystem::exists(Options().root / before); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(std::filesystem::exists(Options().root / before));
}

TEST_F(IndexTest, CategoryRenameUpdatesFacetNames) {
  OpenAndStart();
  Deliver(catalog_.Put(TestListing("prd_1", "Novel", 900, "cat_books")));
  Deliver(catalog_.AddCategory("cat_books", "", "Printed books"));
  Idle();
  auto r = Run("facets=category", 0, true);
  EXPECT_EQ(r.categories->names[r.categories->index_of.at("cat_books")], "Printed books");
}

TEST_F(IndexTest, AnOldCategoryEventNeverRestoresAnOldName) {
  OpenAndStart();
  Deliver(catalog_.Put(TestListing("prd_1", "Novel", 900, "cat_books")));
  auto old_name = catalog_.AddCategory("cat_books", "", "Old books");
  auto new_name = catalog_.AddCategory("cat_books", "", "Printed books");
  Deliver(old_name);
  Deliver(new_name);
  Idle();
  Deliver(old_name);  // redelivered after catch-up
  Idle();
  auto name_of = [&] {
    auto r = Run("facets=category", 0, true);
    return r.categories->names[r.categories->index_of.at("cat_books")];
  };
  EXPECT_EQ(name_of(), "Printed books");
  // A listing event older than the rename carries the old name in its path.
  auto stale = catalog_.AllListings().front();
  stale.category_path = {{"cat_books", "Old books"}};
  stale.version = 7;
  events::Event e;
  e.id = "evt_stale";
  e.type = "listing.updated";
  e.source = "catalog";
  e.seq = old_name.seq;
  e.payload = boost::json::serialize(catalog::ListingEventPayload(stale));
  Deliver(e);
  Idle();
  EXPECT_EQ(name_of(), "Printed books");
  // The seqs are kept with the names: a restart (catch-up replays the
  // window, old events included) does not bring the old name back.
  searcher_.reset();
  indexer_.reset();
  OpenAndStart();
  EXPECT_EQ(name_of(), "Printed books");
}

TEST_F(IndexTest, ConcurrentSearchesWithoutAFilterShareNothing) {
  OpenAndStart();
  for (int i = 0; i < 40; ++i) Deliver(catalog_.Put(TestListing("prd_" + std::to_string(i), "Lamp", 100 + i, "cat_root")));
  Idle();
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        auto req = ParseSearchRequest(i % 2 ? "limit=5" : "facets=all");
        auto r = searcher_->Search(*req, 0, req->any_facet());
        if (!r.ok() || r->total != 40) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(IndexTest, SpellingSuggestionsLookAtTheFirstWordsOnly) {
  OpenAndStart();
  Deliver(catalog_.Put(TestListing("prd_1", "Telescope with tripod", 20000, "cat_root")));
  Idle();
  auto r = Run("q=telescpoe+a+b+c+tripdo");
  ASSERT_TRUE(r.spelling_suggestion.has_value());
  EXPECT_EQ(*r.spelling_suggestion, "telescope a b c tripdo");  // the 5th word is left alone
}

TEST_F(IndexTest, SuggestNeedsTwoLetters) {
  OpenAndStart();
  Deliver(catalog_.Put(TestListing("prd_1", "Phone case", 500, "cat_phones")));
  Idle();
  SuggestRequest req;
  req.q = "p";
  req.words = {"p"};
  auto one = searcher_->Suggest(req);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->empty());
  req.q = req.words[0] = "ph";
  auto two = searcher_->Suggest(req);
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->size(), 1u);
  EXPECT_EQ((*two)[0].text, "phone");
}

TEST_F(IndexTest, HitsBeyondTheHitTableBoundComeFromTheIndex) {
  for (int i = 0; i < 30; ++i) (void)catalog_.Put(TestListing("prd_" + std::to_string(100 + i), "Kite", 700, "cat_root"));
  auto options = Options();
  options.hit_table_bytes = 10 * (HitTable::kEntryOverhead + 400);  // about ten hits
  auto indexer = Indexer::Open(options, catalog_);
  ASSERT_TRUE(indexer.ok());
  indexer_ = std::move(*indexer);
  searcher_ = std::make_unique<Searcher>(*indexer_);
  indexer_->Start();
  Idle();
  const auto held = indexer_->snapshot()->hits->entries();
  EXPECT_GT(held, 0u);
  EXPECT_LT(held, 30u);
  EXPECT_LE(indexer_->snapshot()->hits->bytes(), options.hit_table_bytes);
  auto r = Run("q=kite&limit=100&sort=price_asc");
  ASSERT_EQ(r.docs.size(), 30u);
  std::set<std::string> ids;
  for (const auto& id : Ids(r)) ids.insert(id);
  EXPECT_EQ(ids.size(), 30u);
  // Updates reach hits inside and beyond the bound alike.
  Deliver(catalog_.SetQuantity("prd_100", 0));
  Deliver(catalog_.SetQuantity("prd_129", 0));
  Idle();
  auto out = Run("in_stock=false&limit=100");
  ASSERT_EQ(out.docs.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(Doc(out, i).at("in_stock"), false);
}

TEST(HitTable, SnapshotsKeepTheirEntriesWhileTheWriterChangesACopy) {
  HitTable writer(1 << 20);
  auto hit = [](const char* s) { return std::make_shared<const std::string>(s); };
  writer.Set(1, hit("one"));
  writer.Set(300, hit("three hundred"));
  const HitTable published = writer;  // what Publish does
  writer.Set(1, hit("uno"));
  writer.Set(300, nullptr);
  writer.Set(5000, hit("new"));
  EXPECT_EQ(*published.Find(1), "one");
  EXPECT_EQ(*published.Find(300), "three hundred");
  EXPECT_EQ(published.Find(5000), nullptr);
  EXPECT_EQ(*writer.Find(1), "uno");
  EXPECT_EQ(writer.Find(300), nullptr);
  EXPECT_EQ(*writer.Find(5000), "new");
  EXPECT_EQ(writer.Find(2), nullptr);
  EXPECT_EQ(writer.entries(), 2u);
  EXPECT_EQ(writer.bytes(), 6 + 2 * HitTable::kEntryOverhead);
  // Beyond the bound an entry is not kept (and a replaced one is forgotten).
  HitTable small(HitTable::kEntryOverhead + 4);
  small.Set(1, hit("abcd"));
  small.Set(2, hit("x"));
  EXPECT_NE(small.Find(1), nullptr);
  EXPECT_EQ(small.Find(2), nullptr);
  small.Set(1, hit("abcdef"));
  EXPECT_EQ(small.Find(1), nullptr);
  EXPECT_EQ(small.bytes(), 0u);
}

TEST_F(IndexTest, WaitsForTheCatalogWhenTheOutboxIsUnreadable) {
  catalog_.fail_events = true;
  auto indexer = Indexer::Open(Options(), catalog_);
  ASSERT_TRUE(indexer.ok());
  indexer_ = std::move(*indexer);
  indexer_->Start();
  EXPECT_FALSE(indexer_->WaitIdle(100ms));
  EXPECT_FALSE(indexer_->caught_up());
  catalog_.fail_events = false;
  EXPECT_TRUE(indexer_->WaitIdle(5s));
}

}  // namespace
}  // namespace agora::search
