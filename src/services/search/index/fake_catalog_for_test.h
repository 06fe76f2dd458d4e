// An in-memory CatalogClient for search tests: listings, categories and an
// outbox of the events the real catalog would publish. Test-only.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "services/catalog/client.h"
#include "services/catalog/domain/listing_json.h"
#include "services/search/index/document.h"

namespace agora::search {

// The order-side calls of CatalogClient, which search never makes.
class CatalogForSearch : public catalog::CatalogClient {
 public:
  Result<catalog::Listing> GetActiveListing(std::string_view) override { return Error::Internal("unused"); }
  Result<catalog::Reservation> Reserve(std::string_view, const std::vector<catalog::ReservationItem>&,
                                       std::chrono::milliseconds) override {
    return Error::Internal("unused");
  }
  Result<catalog::Reservation> CommitReservation(std::string_view) override { return Error::Internal("unused"); }
  Result<catalog::Reservation> ReleaseReservation(std::string_view) override { return Error::Internal("unused"); }
};

class FakeCatalog : public CatalogForSearch {
 public:

  Result<std::vector<catalog::Category>> Categories() override {
    std::lock_guard lock(mu_);
    std::vector<catalog::Category> out;
    for (const auto& [id, c] : categories_) out.push_back(c);
    return out;
  }
  Result<std::vector<catalog::Listing>> ListingsAfter(std::string_view after_id, int limit) override {
    std::lock_guard lock(mu_);
    ++listings_calls;
    std::vector<catalog::Listing> out;
    for (auto it = listings_.upper_bound(std::string(after_id)); it != listings_.end() && static_cast<int>(out.size()) < limit; ++it) {
      out.push_back(WithPath(it->second));
    }
    return out;
  }
  Result<std::vector<events::Event>> EventsAfter(int64_t after_seq, int limit) override {
    std::lock_guard lock(mu_);
    if (fail_events) return Error::Unavailable("catalog down");
    events_after_calls.push_back(after_seq);
    std::vector<events::Event> out;
    for (const auto& e : outbox_) {
      if (e.seq > after_seq && static_cast<int>(out.size()) < limit) out.push_back(e);
    }
    return out;
  }
  Result<int64_t> LastEventSeq() override {
    std::lock_guard lock(mu_);
    return outbox_.empty() ? int64_t{0} : outbox_.back().seq;
  }

  // --- test helpers --------------------------------------------------------

  events::Event AddCategory(const std::string& id, const std::string& parent, const std::string& name) {
    std::lock_guard lock(mu_);
    catalog::Category c;
    c.id = id;
    c.parent_id = parent;
    c.name = name;
    c.slug = id;
    const bool exists = categories_.count(id) > 0;
    categories_[id] = c;
    return AppendLocked(exists ? "category.updated" : "category.created",
                        boost::json::serialize(boost::json::object{{"id", id}, {"parent_id", parent}, {"name", name}, {"slug", id}}));
  }

  // Creates or replaces a listing (bumping its version) and returns the event.
  events::Event Put(catalog::Listing l) {
    std::lock_guard lock(mu_);
    auto it = listings_.find(l.id);
    const bool exists = it != listings_.end();
    l.version = exists ? it->second.version + 1 : 1;
    if (l.status == catalog::ListingStatus::kActive && !l.published_at_ms) l.published_at_ms = l.created_at_ms;
    listings_[l.id] = l;
    const char* type = !exists ? "listing.created"
                       : l.status == catalog::ListingStatus::kArchived ? "listing.archived"
                                                                        : "listing.updated";
    return AppendLocked(type, boost::json::serialize(catalog::ListingEventPayload(WithPath(l))));
  }

  events::Event SetQuantity(const std::string& id, int64_t quantity) {
    std::lock_guard lock(mu_);
    auto& l = listings_.at(id);
    l.quantity = quantity;
    ++l.version;
    return AppendLocked("inventory.changed",
                        boost::json::serialize(boost::json::object{{"listing_id", id},
                                                                   {"quantity", quantity},
                                                                   {"reserved", l.reserved},
                                                                   {"version", l.version},
                                                                   {"status", l.status == catalog::ListingStatus::kActive ? "active" : "draft"},
                                                                   {"reason", "adjustment"}}));
  }

  std::vector<catalog::Listing> AllListings() {
    std::lock_guard lock(mu_);
    std::vector<catalog::Listing> out;
    for (const auto& [id, l] : listings_) out.push_back(WithPath(l));
    return out;
  }

  std::atomic<bool> fail_events{false};
  int listings_calls = 0;
  std::vector<int64_t> events_after_calls;

 private:
  catalog::Listing WithPath(catalog::Listing l) const {
    l.category_path.clear();
    std::string id = l.category_id;
    while (!id.empty()) {
      auto it = categories_.find(id);
      if (it == categories_.end()) break;
      l.category_path.insert(l.category_path.begin(), {it->second.id, it->second.name});
      id = it->second.parent_id;
    }
    return l;
  }
  events::Event AppendLocked(const std::string& type, std::string payload) {
    events::Event e;
    e.id = "evt_" + std::to_string(outbox_.size() + 1);
    e.type = type;
    e.source = "catalog";
    e.payload = std::move(payload);
    e.seq = static_cast<int64_t>(outbox_.size()) + 1;
    outbox_.push_back(e);
    return e;
  }

  std::mutex mu_;
  std::map<std::string, catalog::Listing> listings_;
  std::map<std::string, catalog::Category> categories_;
  std::vector<events::Event> outbox_;
};

// A listing with the fields search cares about.
inline catalog::Listing TestListing(const std::string& id, const std::string& title, int64_t price,
                                    const std::string& category, const std::string& condition = "new",
                                    int64_t quantity = 3) {
  catalog::Listing l;
  l.id = id;
  l.seller_id = "usr_seller1";
  l.title = title;
  l.description = "A fine " + title + " in working order.";
  l.price = {price, "EUR"};
  l.quantity = quantity;
  l.category_id = category;
  l.condition = condition;
  l.attributes = {{"brand", "Acme"}};
  l.status = catalog::ListingStatus::kActive;
  l.created_at_ms = 1'700'000'000'000;
  return l;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "agora-search-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace agora::search
