#include "services/search/api/handlers.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/clock.h"
#include "core/http/app.h"
#include "services/search/index/fake_catalog_for_test.h"
#include "services/search/module.h"

namespace agora::search {
namespace {

using namespace std::chrono_literals;

class SearchApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_.AddCategory("cat_root", "", "Electronics");
    catalog_.AddCategory("cat_phones", "cat_root", "Phones");
    for (int i = 0; i < 30; ++i) {
      auto l = TestListing("prd_" + std::to_string(100 + i), i % 2 ? "Red phone" : "Blue phone", 500 * i,
                           "cat_phones", i % 3 ? "new" : "good");
      l.created_at_ms += i;
      (void)catalog_.Put(l);
    }
    (void)catalog_.Put(TestListing("prd_w", "Gold watch", 60000, "cat_root"));
    IndexerOptions o;
    o.root = dir_.path() / "search";
    o.commit_interval = 10ms;
    indexer_ = std::move(Indexer::Open(o, catalog_).value());
    searcher_ = std::make_unique<Searcher>(*indexer_);
    api_ = std::make_unique<SearchApi>(*indexer_, *searcher_, results_, facets_, cursors_);
    indexer_->Start();
    ASSERT_TRUE(indexer_->WaitIdle(5s));
  }

  boost::json::object Ok(std::string_view q) {
    auto body = api_->Search(q);
    EXPECT_TRUE(body.ok()) << q << ": " << (body.ok() ? "" : body.error().message);
    return body.ok() ? boost::json::parse(*body).as_object() : boost::json::object{};
  }
  Error Bad(std::string_view q) {
    auto body = api_->Search(q);
    EXPECT_FALSE(body.ok()) << q;
    return body.ok() ? Error{} : body.error();
  }

  TempDir dir_;
  FakeCatalog catalog_;
  crypto::CursorCodec cursors_{std::string(32, 'k')};
  ResultCache results_{1 << 20};
  ResultCache facets_{1 << 20};
  std::unique_ptr<Indexer> indexer_;
  std::unique_ptr<Searcher> searcher_;
  std::unique_ptr<SearchApi> api_;
};

TEST_F(SearchApiTest, AnswersWithDataCursorTotalAndEmptyFacets) {
  auto r = Ok("q=red+phone&limit=5");
  EXPECT_EQ(r.at("data").as_array().size(), 5u);
  EXPECT_TRUE(r.at("next_cursor").is_string());
  EXPECT_EQ(r.at("match"), "all");
  EXPECT_TRUE(r.at("spelling_suggestion").is_null());
  EXPECT_TRUE(r.at("facets").as_object().empty());
  const auto& first = r.at("data").as_array()[0].as_object();
  EXPECT_FALSE(first.contains("description"));
  EXPECT_EQ(first.at("snippet"), "A fine Red phone in working order.");
}

TEST_F(SearchApiTest, CursorsPageThroughWithoutOverlap) {
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto r = Ok("limit=7" + (cursor.empty() ? "" : "&cursor=" + cursor));
    for (const auto& d : r.at("data").as_array()) EXPECT_TRUE(seen.insert(std::string(d.at("id").as_string())).second);
    cursor = r.at("next_cursor").is_null() ? "" : std::string(r.at("next_cursor").as_string());
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 31u);
  EXPECT_EQ(pages, 5);
}

TEST_F(SearchApiTest, RefusesTamperedAndForeignCursors) {
  auto r = Ok("q=phone&limit=5");
  std::string cursor(r.at("next_cursor").as_string());
  std::string tampered = cursor;
  tampered[2] = tampered[2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Bad("q=phone&limit=5&cursor=" + tampered).type, "invalid-cursor");
  EXPECT_EQ(Bad("q=red&limit=5&cursor=" + cursor).type, "invalid-cursor");
  EXPECT_TRUE(api_->Search("q=phone&limit=5&cursor=" + cursor).ok());
}

TEST_F(SearchApiTest, RefusesBadInputWithValidationProblems) {
  EXPECT_EQ(Bad("q=" + std::string(10240, 'a')).fields.at(0).field, "q");
  auto op = Bad("q=red%20OR%20blue");
  EXPECT_EQ(op.type, "validation");
  EXPECT_EQ(op.fields.at(0).message, "must be plain words; search operators are not supported");
  EXPECT_EQ(Bad("q=%22red%22").fields.at(0).field, "q");
  EXPECT_EQ(Bad("q=%FF").fields.at(0).field, "q");
  EXPECT_EQ(Bad("sort=random").fields.at(0).field, "sort");
  EXPECT_EQ(Bad("limit=1000").fields.at(0).field, "limit");
  EXPECT_EQ(Bad("facets=colour").fields.at(0).field, "facets");
  EXPECT_EQ(Bad("page=2").fields.at(0).field, "page");
  EXPECT_EQ(Bad("limit=5&limit=6").fields.at(0).field, "limit");
  auto words = Bad("q=a+b+c+d+e+f+g+h+i+j+k+l+m");
  EXPECT_EQ(words.type, "validation");
  EXPECT_EQ(words.fields.at(0).field, "q");
  EXPECT_EQ(words.fields.at(0).message, "must have at most 12 words");
  EXPECT_TRUE(api_->Search("q=a+b+c+d+e+f+g+h+i+j+k+l").ok());
  auto suggest = api_->Suggest("q=r&colour=red");
  ASSERT_FALSE(suggest.ok());
  EXPECT_EQ(suggest.error().fields.at(0).field, "colour");
  EXPECT_EQ(api_->Suggest("q=r").value(), R"({"data":[],"next_cursor":null})");
}

TEST_F(SearchApiTest, FacetsAreRenderedSortedAndCachedAcrossPages) {
  auto r = Ok("q=phone&facets=all&limit=5");
  EXPECT_EQ(r.at("total"), 30);
  const auto& f = r.at("facets").as_object();
  ASSERT_EQ(f.at("category").as_array().size(), 1u);
  EXPECT_EQ(f.at("category").as_array()[0], (boost::json::object{{"id", "cat_phones"}, {"name", "Phones"}, {"count", 30}}));
  const auto& cond = f.at("condition").as_array();
  ASSERT_EQ(cond.size(), 2u);
  EXPECT_EQ(cond[0].at("value"), "new");
  EXPECT_EQ(cond[0].at("count"), 20);
  EXPECT_EQ(cond[1].at("count"), 10);
  const auto& price = f.at("price").as_array();
  EXPECT_EQ(price.front().at("min"), 0);
  EXPECT_EQ(price.front().at("max"), 1000);
  EXPECT_EQ(price.front().at("count"), 2);  // 0 and 500
  EXPECT_EQ(price.back().at("max"), 25000);
  auto watch = Ok("q=watch&facets=price");
  EXPECT_EQ(watch.at("facets").at("price"),
            (boost::json::array{boost::json::object{{"min", 50000}, {"count", 1}, {"max", nullptr}}}));
  const uint64_t facet_misses = facets_.misses();
  auto page2 = Ok("q=phone&facets=all&limit=5&cursor=" + std::string(r.at("next_cursor").as_string()));
  EXPECT_EQ(page2.at("facets"), r.at("facets"));
  EXPECT_EQ(facets_.misses(), facet_misses);  // counted once
  const uint64_t hits = results_.hits();
  (void)Ok("q=phone&facets=all&limit=5");
  EXPECT_EQ(results_.hits(), hits + 1);
}

TEST_F(SearchApiTest, ANewEventInvalidatesCachedAnswers) {
  EXPECT_EQ(Ok("q=kettle").at("data").as_array().size(), 0u);
  ASSERT_TRUE(indexer_->Enqueue(catalog_.Put(TestListing("prd_k", "Kettle", 3000, "cat_root"))).ok());
  ASSERT_TRUE(indexer_->WaitIdle(5s));
  EXPECT_EQ(Ok("q=kettle").at("data").as_array().size(), 1u);
}

TEST_F(SearchApiTest, SuggestAnswersCompletions) {
  auto body = api_->Suggest("q=ph&limit=3");
  ASSERT_TRUE(body.ok());
  auto r = boost::json::parse(*body).as_object();
  ASSERT_EQ(r.at("data").as_array().size(), 1u);
  EXPECT_EQ(r.at("data").as_array()[0], (boost::json::object{{"text", "phone"}, {"count", 30}}));
  EXPECT_TRUE(r.at("next_cursor").is_null());
  EXPECT_FALSE(api_->Suggest("q=ph%20AND").ok());
  EXPECT_FALSE(api_->Suggest("limit=3").ok());
}

TEST(SearchModule, IndexesEventsFromTheBusAndServesRoutes) {
  TempDir dir;
  FakeCatalog catalog;
  catalog.AddCategory("cat_root", "", "Toys");
  ModuleOptions options;
  options.data_dir = dir.path().string();
  options.commit_interval = 10ms;
  auto module = Module::Open(options, catalog, crypto::CursorCodec(std::string(32, 'k')), SystemClock::Instance());
  ASSERT_TRUE(module.ok()) << module.error().message;
  metrics::Registry registry;
  http::App app({}, registry);
  (*module)->AddRoutes(app);
  auto bus = events::NewInProcessBus();
  (*module)->Subscribe(*bus);
  bus->Start();
  (*module)->Start(registry);
  ASSERT_TRUE((*module)->WaitIdleForTest(5s));
  EXPECT_TRUE((*module)->Ready().ok());
  ASSERT_TRUE(bus->Publish(catalog.Put(TestListing("prd_1", "Wooden train", 2500, "cat_root"))).ok());
  events::Event other{"evt_x", "user.registered", "identity", "{}", 0, 0};
  ASSERT_TRUE(bus->Publish(other).ok());
  // Delivery is asynchronous: wait until the bus handed the event over.
  for (int i = 0; i < 200; ++i) {
    if (registry.Render().find("agora_search_indexed_documents 1") != std::string::npos) break;
    ASSERT_TRUE((*module)->WaitIdleForTest(5s));
    std::this_thread::sleep_for(5ms);
  }
  http::Request req;
  req.method = http::Method::kGet;
  req.path = "/v1/search";
  req.target = "/v1/search?q=train";
  req.query = "q=train";
  auto d = app.Begin(req);
  ASSERT_FALSE(d.immediate.has_value());
  auto res = app.Run(*d.route, req);
  EXPECT_EQ(res.status, 200);
  EXPECT_NE(res.body.find("Wooden train"), std::string::npos);
  req.query = "q=a%20AND%20b";
  res = app.Run(*d.route, req);
  EXPECT_EQ(res.status, 400);
  EXPECT_NE(res.body.find("/problems/validation"), std::string::npos);
  EXPECT_NE(registry.Render().find("agora_search_cache_lookups_total{cache=\"results\",outcome=\"miss\"}"),
            std::string::npos);
  bus->Stop();
  (*module)->Stop();
  // Reindex through the module's entry point.
  auto stats = Reindex(options.data_dir, catalog);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->listings, 1);
}

}  // namespace
}  // namespace agora::search
