#include "services/catalog/store/sql_store.h"

#include <algorithm>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace agora::catalog {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE categories (
  id TEXT PRIMARY KEY,
  parent_id TEXT REFERENCES categories(id),
  name TEXT NOT NULL,
  slug TEXT NOT NULL UNIQUE,
  sort_position BIGINT NOT NULL DEFAULT 0,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL
);
CREATE INDEX categories_parent ON categories (parent_id);
CREATE TABLE listings (
  id TEXT PRIMARY KEY,
  seller_id TEXT NOT NULL,
  title TEXT NOT NULL,
  description TEXT NOT NULL,
  price_amount BIGINT NOT NULL CHECK (price_amount >= 0),
  currency TEXT NOT NULL,
  quantity BIGINT NOT NULL CHECK (quantity >= 0),
  reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
  category_id TEXT NOT NULL REFERENCES categories(id),
  item_condition TEXT NOT NULL,
  attributes TEXT NOT NULL,
  images TEXT NOT NULL,
  shipping TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('draft', 'active', 'archived')),
  version BIGINT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  published_at_ms BIGINT
);
CREATE INDEX listings_status_published ON listings (status, published_at_ms, id);
CREATE INDEX listings_status_price ON listings (status, price_amount, id);
CREATE INDEX listings_seller_created ON listings (seller_id, created_at_ms, id);
CREATE INDEX listings_category ON listings (category_id, status);
CREATE TABLE reservations (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('held', 'committed', 'released', 'expired')),
  created_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL,
  finished_at_ms BIGINT
);
CREATE INDEX reservations_held_expiry ON reservations (expires_at_ms) WHERE state = 'held';
CREATE TABLE reservation_items (
  reservation_id TEXT NOT NULL REFERENCES reservations(id),
  listing_id TEXT NOT NULL REFERENCES listings(id),
  quantity BIGINT NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (reservation_id, listing_id)
);
)sql";

constexpr const char* kDefaultCategories = R"sql(
INSERT INTO categories (id, parent_id, name, slug, sort_position, created_at_ms, updated_at_ms) VALUES
  ('cat_00000000000000000000000100', NULL, 'Electronics', 'electronics', 1, 0, 0),
  ('cat_00000000000000000000000101', 'cat_00000000000000000000000100', 'Phones', 'phones', 1, 0, 0),
  ('cat_00000000000000000000000102', 'cat_00000000000000000000000100', 'Computers', 'computers', 2, 0, 0),
  ('cat_00000000000000000000000103', 'cat_00000000000000000000000100', 'Audio', 'audio', 3, 0, 0),
  ('cat_00000000000000000000000104', 'cat_00000000000000000000000100', 'Cameras', 'cameras', 4, 0, 0),
  ('cat_00000000000000000000000105', 'cat_00000000000000000000000100', 'Video games', 'video-games', 5, 0, 0),
  ('cat_00000000000000000000000200', NULL, 'Fashion', 'fashion', 2, 0, 0),
  ('cat_00000000000000000000000201', 'cat_00000000000000000000000200', 'Women', 'women', 1, 0, 0),
  ('cat_00000000000000000000000202', 'cat_00000000000000000000000200', 'Men', 'men', 2, 0, 0),
  ('cat_00000000000000000000000203', 'cat_00000000000000000000000200', 'Shoes', 'shoes', 3, 0, 0),
  ('cat_00000000000000000000000204', 'cat_00000000000000000000000200', 'Watches & jewellery', 'watches-jewellery', 4, 0, 0),
  ('cat_00000000000000000000000300', NULL, 'Home & Garden', 'home-garden', 3, 0, 0),
  ('cat_00000000000000000000000301', 'cat_00000000000000000000000300', 'Furniture', 'furniture', 1, 0, 0),
  ('cat_00000000000000000000000302', 'cat_00000000000000000000000300', 'Kitchen', 'kitchen', 2, 0, 0),
  ('cat_00000000000000000000000303', 'cat_00000000000000000000000300', 'Garden', 'garden', 3, 0, 0),
  ('cat_00000000000000000000000304', 'cat_00000000000000000000000300', 'Tools', 'tools', 4, 0, 0),
  ('cat_00000000000000000000000400', NULL, 'Books & Media', 'books-media', 4, 0, 0),
  ('cat_00000000000000000000000401', 'cat_00000000000000000000000400', 'Books', 'books', 1, 0, 0),
  ('cat_00000000000000000000000402', 'cat_00000000000000000000000400', 'Music', 'music', 2, 0, 0),
  ('cat_00000000000000000000000403', 'cat_00000000000000000000000400', 'Films', 'films', 3, 0, 0),
  ('cat_00000000000000000000000500', NULL, 'Sports & Outdoors', 'sports-outdoors', 5, 0, 0),
  ('cat_00000000000000000000000501', 'cat_00000000000000000000000500', 'Bicycles', 'bicycles', 1, 0, 0),
  ('cat_00000000000000000000000502', 'cat_00000000000000000000000500', 'Camping', 'camping', 2, 0, 0),
  ('cat_00000000000000000000000503', 'cat_00000000000000000000000500', 'Fitness', 'fitness', 3, 0, 0),
  ('cat_00000000000000000000000600', NULL, 'Toys & Games', 'toys-games', 6, 0, 0),
  ('cat_00000000000000000000000601', 'cat_00000000000000000000000600', 'Toys', 'toys', 1, 0, 0),
  ('cat_00000000000000000000000602', 'cat_00000000000000000000000600', 'Board games', 'board-games', 2, 0, 0),
  ('cat_00000000000000000000000700', NULL, 'Collectibles & Art', 'collectibles-art', 7, 0, 0),
  ('cat_00000000000000000000000701', 'cat_00000000000000000000000700', 'Art', 'art', 1, 0, 0),
  ('cat_00000000000000000000000702', 'cat_00000000000000000000000700', 'Coins & stamps', 'coins-stamps', 2, 0, 0),
  ('cat_00000000000000000000000703', 'cat_00000000000000000000000700', 'Antiques', 'antiques', 3, 0, 0),
  ('cat_00000000000000000000000800', NULL, 'Vehicles & Parts', 'vehicles-parts', 8, 0, 0),
  ('cat_00000000000000000000000801', 'cat_00000000000000000000000800', 'Car parts', 'car-parts', 1, 0, 0),
  ('cat_00000000000000000000000802', 'cat_00000000000000000000000800', 'Motorcycle parts', 'motorcycle-parts', 2, 0, 0);
)sql";

constexpr db::Migration kMigrations[] = {
    {1, "listings_categories_reservations", kSchema},
    {2, "default_category_tree", kDefaultCategories},
};

constexpr const char* kCols =
    "id, seller_id, title, description, price_amount, currency, quantity, reserved, category_id, item_condition, "
    "attributes, images, shipping, status, version, created_at_ms, updated_at_ms, published_at_ms";

std::string AttributesJson(const Listing& l) {
  boost::json::object o;
  for (const auto& [k, v] : l.attributes) o[k] = v;
  return boost::json::serialize(o);
}

std::string ImagesJson(const Listing& l) {
  boost::json::array a;
  for (const auto& u : l.images) a.emplace_back(u);
  return boost::json::serialize(a);
}

std::string ShippingJson(const Listing& l) {
  boost::json::array a;
  for (const auto& s : l.shipping) {
    a.push_back(boost::json::object{{"method", s.method},
                                    {"amount", s.price.amount},
                                    {"currency", s.price.currency},
                                    {"min_days", s.min_days},
                                    {"max_days", s.max_days}});
  }
  return boost::json::serialize(a);
}

boost::json::value ParseColumn(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  return ec ? boost::json::value() : v;
}

Listing ListingFromRow(const db::Row& r) {
  Listing l;
  l.id = r.Text(0);
  l.seller_id = r.Text(1);
  l.title = r.Text(2);
  l.description = r.Text(3);
  l.price = {r.Int(4), r.Text(5)};
  l.quantity = r.Int(6);
  l.reserved = r.Int(7);
  l.category_id = r.Text(8);
  l.condition = r.Text(9);
  if (auto v = ParseColumn(r.Text(10)); v.is_object()) {
    for (const auto& kv : v.as_object()) {
      if (kv.value().is_string()) l.attributes.emplace_back(kv.key(), kv.value().as_string());
    }
  }
  if (auto v = ParseColumn(r.Text(11)); v.is_array()) {
    for (const auto& u : v.as_array()) {
      if (u.is_string()) l.images.emplace_back(u.as_string());
    }
  }
  if (auto v = ParseColumn(r.Text(12)); v.is_array()) {
    for (const auto& s : v.as_array()) {
      if (!s.is_object()) continue;
      const auto& o = s.as_object();
      auto num = [&](const char* k) -> int64_t {
        const auto* p = o.if_contains(k);
        return p && p->is_int64() ? p->as_int64() : 0;
      };
      auto str = [&](const char* k) -> std::string {
        const auto* p = o.if_contains(k);
        return p && p->is_string() ? std::string(p->as_string()) : std::string();
      };
      l.shipping.push_back({str("method"), {num("amount"), str("currency")}, static_cast<int>(num("min_days")),
                            static_cast<int>(num("max_days"))});
    }
  }
  l.status = ParseStatus(r.Text(13)).value_or(ListingStatus::kDraft);
  l.version = r.Int(14);
  l.created_at_ms = r.Int(15);
  l.updated_at_ms = r.Int(16);
  l.published_at_ms = r.OptInt(17);
  return l;
}

std::vector<db::Value> InsertParams(const Listing& l) {
  return {l.id,
          l.seller_id,
          l.title,
          l.description,
          l.price.amount,
          l.price.currency,
          l.quantity,
          l.reserved,
          l.category_id,
          l.condition,
          AttributesJson(l),
          ImagesJson(l),
          ShippingJson(l),
          std::string(StatusName(l.status)),
          l.version,
          l.created_at_ms,
          l.updated_at_ms,
          l.published_at_ms ? db::Value(*l.published_at_ms) : db::Value(nullptr)};
}

const char* ForUpdate(db::Tx& tx) { return tx.dialect() == db::Dialect::kPostgres ? " FOR UPDATE" : ""; }

Error ListingNotFound() { return Error::NotFound("No such listing").WithType("listing-not-found"); }

Result<Listing> LockListing(db::Tx& tx, std::string_view id) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                         tx.Exec("catalog.lock_listing",
                                 fmt::format("SELECT {} FROM listings WHERE id = $1{}", kCols, ForUpdate(tx)),
                                 {std::string(id)}));
  if (rows.empty()) return ListingNotFound();
  return ListingFromRow(rows[0]);
}

Status SaveListing(db::Tx& tx, const Listing& l) {
  auto saved =
      tx.Exec("catalog.save_listing",
              "UPDATE listings SET title = $2, description = $3, price_amount = $4, currency = $5, quantity = $6, "
              "reserved = $7, category_id = $8, item_condition = $9, attributes = $10, images = $11, shipping = $12, "
              "status = $13, version = $14, updated_at_ms = $15, published_at_ms = $16 WHERE id = $1",
              {l.id, l.title, l.description, l.price.amount, l.price.currency, l.quantity, l.reserved, l.category_id,
               l.condition, AttributesJson(l), ImagesJson(l), ShippingJson(l), std::string(StatusName(l.status)),
               l.version, l.updated_at_ms,
               l.published_at_ms ? db::Value(*l.published_at_ms) : db::Value(nullptr)});
  if (!saved.ok() && saved.error().type == "foreign-key") {
    return Error::Validation({{"category_id", "is not a known category"}});
  }
  AGORA_ASSIGN_OR_RETURN(db::Rows r, std::move(saved));
  if (r.affected != 1) return Error::Internal("catalog.save_listing changed no row");
  return Ok();
}

Status SaveStock(db::Tx& tx, const Listing& l) {
  AGORA_ASSIGN_OR_RETURN(db::Rows r, tx.Exec("catalog.save_stock",
                                             "UPDATE listings SET quantity = $2, reserved = $3, version = $4, "
                                             "updated_at_ms = $5 WHERE id = $1",
                                             {l.id, l.quantity, l.reserved, l.version, l.updated_at_ms}));
  if (r.affected != 1) return Error::Internal("catalog.save_stock changed no row");
  return Ok();
}

Result<ReservationState> ParseState(std::string_view s) {
  if (s == "held") return ReservationState::kHeld;
  if (s == "committed") return ReservationState::kCommitted;
  if (s == "released") return ReservationState::kReleased;
  if (s == "expired") return ReservationState::kExpired;
  return Error::Internal("unknown reservation state");
}

}  // namespace

std::span<const db::Migration> CatalogMigrations() { return kMigrations; }

void SqlCatalogStore::Committed(const std::vector<std::string>& changed_ids) {
  if (cache_listings_ && !changed_ids.empty()) {
    std::lock_guard lock(cache_mu_);
    ++generation_;
    for (const auto& id : changed_ids) cache_.erase(id);
  }
  if (on_events_) on_events_();
}

Result<std::vector<Category>> SqlCatalogStore::LoadCategories() {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                         db_.Exec("catalog.load_categories",
                                  "SELECT id, parent_id, name, slug, sort_position, created_at_ms, updated_at_ms "
                                  "FROM categories"));
  std::vector<Category> out;
  out.reserve(rows.size());
  for (const auto& r : rows) {
    out.push_back({r.Text(0), r.Text(1), r.Text(2), r.Text(3), r.Int(4), r.Int(5), r.Int(6)});
  }
  return out;
}

Status SqlCatalogStore::InsertCategory(const Category& c, const events::Event& e) {
  Status s = db_.Transact("catalog.insert_category", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    auto r = tx.Exec("catalog.insert_category",
                     "INSERT INTO categories (id, parent_id, name, slug, sort_position, created_at_ms, updated_at_ms) "
                     "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                     {c.id, c.parent_id.empty() ? db::Value(nullptr) : db::Value(c.parent_id), c.name, c.slug,
                      c.position, c.created_at_ms, c.updated_at_ms});
    if (!r.ok()) {
      if (r.error().code == ErrorCode::kConflict) {
        return Error::Conflict("Another category has this slug").WithType("slug-taken");
      }
      if (r.error().type == "foreign-key") {
        return Error::NotFound("The parent category does not exist").WithType("category-not-found");
      }
      return std::move(r).error();
    }
    return events::AppendToOutbox(tx, e);
  });
  if (s.ok()) Committed({});
  return s;
}

Result<Category> SqlCatalogStore::UpdateCategory(std::string_view id, const CategoryInput& patch, int64_t now_ms,
                                                 const std::function<events::Event(const Category&)>& make_event) {
  auto r = db_.Transact("catalog.update_category", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<Category> {
    const std::string sql = fmt::format(
        "SELECT id, parent_id, name, slug, sort_position, created_at_ms, updated_at_ms FROM categories "
        "WHERE id = $1{}",
        ForUpdate(tx));
    auto load = [&](std::string_view cid) -> Result<std::optional<Category>> {
      AGORA_ASSIGN_OR_RETURN(db::Rows rows, tx.Exec("catalog.lock_category", sql, {std::string(cid)}));
      if (rows.empty()) return std::optional<Category>();
      const auto& row = rows[0];
      return std::optional<Category>(
          Category{row.Text(0), row.Text(1), row.Text(2), row.Text(3), row.Int(4), row.Int(5), row.Int(6)});
    };
    AGORA_ASSIGN_OR_RETURN(std::optional<Category> current, load(id));
    if (!current) return Error::NotFound("No such category").WithType("category-not-found");
    Category c = *current;
    if (patch.parent_id && *patch.parent_id != c.parent_id && !patch.parent_id->empty()) {
      // Walk up from the new parent over committed (and, on PostgreSQL,
      // locked) rows: meeting the category itself means a cycle. Two
      // concurrent opposite moves lock each other's rows; PostgreSQL breaks
      // the deadlock and the retried transaction sees the committed move.
      std::string cursor = *patch.parent_id;
      for (size_t depth = 0; !cursor.empty(); ++depth) {
        if (cursor == c.id) {
          return Error::Conflict("A category cannot move under itself or its descendants")
              .WithType("category-cycle");
        }
        if (depth > Limits::kCategoryDepthMax) {
          return Error::Validation(
              {{"parent_id", fmt::format("the tree may be at most {} levels deep", Limits::kCategoryDepthMax)}});
        }
        AGORA_ASSIGN_OR_RETURN(std::optional<Category> step, load(cursor));
        if (!step) return Error::NotFound("The parent category does not exist").WithType("category-not-found");
        cursor = step->parent_id;
      }
    }
    if (patch.name) c.name = *patch.name;
    if (patch.slug) c.slug = *patch.slug;
    if (patch.parent_id) c.parent_id = *patch.parent_id;
    if (patch.position) c.position = *patch.position;
    c.updated_at_ms = now_ms;
    auto updated = tx.Exec("catalog.update_category",
                           "UPDATE categories SET parent_id = $2, name = $3, slug = $4, sort_position = $5, "
                           "updated_at_ms = $6 WHERE id = $1",
                           {c.id, c.parent_id.empty() ? db::Value(nullptr) : db::Value(c.parent_id), c.name, c.slug,
                            c.position, c.updated_at_ms});
    if (!updated.ok()) {
      if (updated.error().code == ErrorCode::kConflict) {
        return Error::Conflict("Another category has this slug").WithType("slug-taken");
      }
      return std::move(updated).error();
    }
    AGORA_RETURN_IF_ERROR(events::AppendToOutbox(tx, make_event(c)));
    return c;
  });
  if (r.ok()) Committed({});
  return r;
}

Status SqlCatalogStore::DeleteCategory(std::string_view id, const events::Event& e) {
  Status s = db_.Transact("catalog.delete_category", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    // Lock the row first, so a listing or child created meanwhile either
    // commits before this count or waits for the delete (and then fails its
    // foreign key, reported as category-not-found).
    AGORA_ASSIGN_OR_RETURN(db::Rows locked,
                           tx.Exec("catalog.lock_category_for_delete",
                                   fmt::format("SELECT id FROM categories WHERE id = $1{}", ForUpdate(tx)),
                                   {std::string(id)}));
    if (locked.empty()) return Error::NotFound("No such category").WithType("category-not-found");
    AGORA_ASSIGN_OR_RETURN(
        db::Rows used,
        tx.Exec("catalog.category_in_use",
                "SELECT (SELECT COUNT(*) FROM categories WHERE parent_id = $1) + "
                "(SELECT COUNT(*) FROM listings WHERE category_id = $1)",
                {std::string(id)}));
    if (!used.empty() && used[0].Int(0) > 0) {
      return Error::FailedPrecondition("The category still has subcategories or listings; move them first")
          .WithType("category-in-use");
    }
    auto deleted = tx.Exec("catalog.delete_category", "DELETE FROM categories WHERE id = $1", {std::string(id)});
    if (!deleted.ok() && deleted.error().type == "foreign-key") {
      return Error::FailedPrecondition("The category still has subcategories or listings; move them first")
          .WithType("category-in-use");
    }
    AGORA_ASSIGN_OR_RETURN(db::Rows r, std::move(deleted));
    if (r.affected != 1) return Error::NotFound("No such category").WithType("category-not-found");
    return events::AppendToOutbox(tx, e);
  });
  if (s.ok()) Committed({});
  return s;
}

Status SqlCatalogStore::InsertListings(const std::vector<Listing>& listings,
                                       const std::vector<events::Event>& evs) {
  Status s = db_.Transact("catalog.insert_listings", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    for (const auto& l : listings) {
      auto r = tx.Exec("catalog.insert_listing",
                       fmt::format("INSERT INTO listings ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
                                   "$9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
                                   kCols),
                       InsertParams(l));
      if (!r.ok() && r.error().type == "foreign-key") {
        return Error::Validation({{"category_id", "is not a known category"}});
      }
      AGORA_RETURN_IF_ERROR(std::move(r));
    }
    for (const auto& e : evs) AGORA_RETURN_IF_ERROR(events::AppendToOutbox(tx, e));
    return Ok();
  });
  if (s.ok()) Committed({});
  return s;
}

Result<Listing> SqlCatalogStore::FindListing(std::string_view id) {
  uint64_t generation = 0;
  if (cache_listings_) {
    std::lock_guard lock(cache_mu_);
    if (auto it = cache_.find(std::string(id)); it != cache_.end()) return it->second;
    generation = generation_;
  }
  AGORA_ASSIGN_OR_RETURN(db::Rows rows, db_.Exec("catalog.find_listing",
                                                 fmt::format("SELECT {} FROM listings WHERE id = $1", kCols),
                                                 {std::string(id)}));
  if (rows.empty()) return ListingNotFound();
  Listing l = ListingFromRow(rows[0]);
  if (cache_listings_) {
    std::lock_guard lock(cache_mu_);
    if (generation == generation_) {
      if (cache_.size() >= kCacheCapacity) cache_.clear();
      cache_.emplace(l.id, l);
    }
  }
  return l;
}

Result<Listing> SqlCatalogStore::MutateListing(std::string_view id, int64_t now_ms,
                                               const std::function<Status(Listing&)>& mutate,
                                               const std::function<events::Event(const Listing&)>& make_event) {
  auto r = db_.Transact("catalog.mutate_listing", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<Listing> {
    AGORA_ASSIGN_OR_RETURN(Listing l, LockListing(tx, id));
    AGORA_RETURN_IF_ERROR(mutate(l));
    l.version += 1;
    l.updated_at_ms = now_ms;
    AGORA_RETURN_IF_ERROR(SaveListing(tx, l));
    AGORA_RETURN_IF_ERROR(events::AppendToOutbox(tx, make_event(l)));
    return l;
  });
  if (r.ok()) Committed({r->id});
  return r;
}

Result<ListingPage> SqlCatalogStore::Browse(const BrowseQuery& q) {
  std::string where;
  std::vector<db::Value> params;
  auto param = [&](db::Value v) {
    params.push_back(std::move(v));
    return fmt::format("${}", params.size());
  };
  auto add = [&](const std::string& cond) { where += (where.empty() ? " WHERE " : " AND ") + cond; };
  auto in_list = [&](const char* column, const std::vector<std::string>& values) {
    std::string list;
    for (const auto& v : values) list += (list.empty() ? "" : ", ") + param(v);
    add(fmt::format("{} IN ({})", column, list));
  };
  const bool mine = !q.seller_scope.empty();
  if (mine) {
    add("seller_id = " + param(q.seller_scope));
    if (q.status) add("status = " + param(std::string(StatusName(*q.status))));
  } else {
    add("status = 'active'");
  }
  if (!q.category_ids.empty()) in_list("category_id", q.category_ids);
  if (q.min_price) add("price_amount >= " + param(*q.min_price));
  if (q.max_price) add("price_amount <= " + param(*q.max_price));
  if (!q.currency.empty()) add("currency = " + param(q.currency));
  if (!q.seller_id.empty()) add("seller_id = " + param(q.seller_id));
  if (!q.conditions.empty()) in_list("item_condition", q.conditions);
  if (q.in_stock) add(*q.in_stock ? "quantity > 0" : "quantity = 0");

  // The sort column, its direction and the key a page ends on.
  const char* column = "published_at_ms";
  bool descending = true;
  if (mine) {
    column = "created_at_ms";
  } else if (q.sort == Sort::kPriceAsc) {
    column = "price_amount";
    descending = false;
  } else if (q.sort == Sort::kPriceDesc) {
    column = "price_amount";
  }
  if (q.after) {
    const std::string k = param(q.after->key);
    const std::string i = param(q.after->id);
    const char* cmp = descending ? "<" : ">";
    add(fmt::format("({0} {1} {2} OR ({0} = {2} AND id {1} {3}))", column, cmp, k, i));
  }
  const char* dir = descending ? "DESC" : "ASC";
  const std::string limit = param(int64_t{q.limit} + 1);
  const std::string sql =
      fmt::format("SELECT {} FROM listings{} ORDER BY {} {}, id {} LIMIT {}", kCols, where, column, dir, dir, limit);
  AGORA_ASSIGN_OR_RETURN(db::Rows rows, db_.Exec("catalog.browse", sql, params));
  ListingPage page;
  for (const auto& row : rows) {
    if (static_cast<int>(page.listings.size()) == q.limit) break;
    page.listings.push_back(ListingFromRow(row));
  }
  if (static_cast<int>(rows.size()) > q.limit && !page.listings.empty()) {
    const Listing& last = page.listings.back();
    int64_t key = last.price.amount;
    if (mine) {
      key = last.created_at_ms;
    } else if (q.sort == Sort::kNewest) {
      key = last.published_at_ms.value_or(0);
    }
    page.next = PageKey{key, last.id};
  }
  return page;
}

Result<std::vector<Listing>> SqlCatalogStore::ListingsAfter(std::string_view after_id, int limit) {
  AGORA_ASSIGN_OR_RETURN(
      db::Rows rows,
      db_.Exec("catalog.listings_after",
               fmt::format("SELECT {} FROM listings WHERE id > $1 ORDER BY id LIMIT $2", kCols),
               {std::string(after_id), int64_t{limit}}));
  std::vector<Listing> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(ListingFromRow(r));
  return out;
}

Status SqlCatalogStore::InsertReservation(const Reservation& r, int64_t now_ms,
                                          const std::function<events::Event(const Listing&)>& make_event) {
  std::vector<std::string> ids;
  Status s = db_.Transact("catalog.reserve", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    ids.clear();
    AGORA_RETURN_IF_ERROR(tx.Exec("catalog.insert_reservation",
                                  "INSERT INTO reservations (id, owner, state, created_at_ms, expires_at_ms) "
                                  "VALUES ($1, $2, 'held', $3, $4)",
                                  {r.id, r.owner, r.created_at_ms, r.expires_at_ms}));
    // Items arrive sorted by listing id: every transaction locks rows in
    // the same order, so two reservations cannot deadlock.
    for (const auto& item : r.items) {
      AGORA_ASSIGN_OR_RETURN(Listing l, LockListing(tx, item.listing_id));
      if (l.status != ListingStatus::kActive) return ListingNotFound();
      if (l.quantity < item.quantity) {
        return Error::FailedPrecondition(
                   fmt::format("Only {} of listing {} available, {} requested", l.quantity, l.id, item.quantity))
            .WithType("insufficient-stock");
      }
      l.quantity -= item.quantity;
      l.reserved += item.quantity;
      l.version += 1;
      l.updated_at_ms = now_ms;
      AGORA_RETURN_IF_ERROR(SaveStock(tx, l));
      AGORA_RETURN_IF_ERROR(tx.Exec("catalog.insert_reservation_item",
                                    "INSERT INTO reservation_items (reservation_id, listing_id, quantity) "
                                    "VALUES ($1, $2, $3)",
                                    {r.id, l.id, item.quantity}));
      AGORA_RETURN_IF_ERROR(events::AppendToOutbox(tx, make_event(l)));
      ids.push_back(l.id);
    }
    return Ok();
  });
  if (s.ok()) Committed(ids);
  return s;
}

Result<Reservation> SqlCatalogStore::FinishReservation(
    std::string_view id, ReservationState to, int64_t now_ms,
    const std::function<events::Event(const Listing&, ReservationState)>& make_event) {
  std::vector<std::string> ids;
  auto result = db_.Transact("catalog.finish_reservation", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<Reservation> {
    ids.clear();
    AGORA_ASSIGN_OR_RETURN(
        db::Rows rows,
        tx.Exec("catalog.lock_reservation",
                fmt::format("SELECT id, owner, state, created_at_ms, expires_at_ms FROM reservations WHERE id = $1{}",
                            ForUpdate(tx)),
                {std::string(id)}));
    if (rows.empty()) return Error::NotFound("No such reservation").WithType("reservation-not-found");
    Reservation r;
    r.id = rows[0].Text(0);
    r.owner = rows[0].Text(1);
    AGORA_ASSIGN_OR_RETURN(r.state, ParseState(rows[0].Text(2)));
    r.created_at_ms = rows[0].Int(3);
    r.expires_at_ms = rows[0].Int(4);
    AGORA_ASSIGN_OR_RETURN(db::Rows items,
                           tx.Exec("catalog.reservation_items",
                                   "SELECT listing_id, quantity FROM reservation_items WHERE reservation_id = $1 "
                                   "ORDER BY listing_id",
                                   {r.id}));
    for (const auto& it : items) r.items.push_back({it.Text(0), it.Int(1)});
    if (r.state != ReservationState::kHeld) return r;
    // Too late to sell: the sweeper just has not reached it yet.
    const ReservationState reached =
        to == ReservationState::kCommitted && r.expires_at_ms <= now_ms ? ReservationState::kExpired : to;
    for (const auto& item : r.items) {
      AGORA_ASSIGN_OR_RETURN(Listing l, LockListing(tx, item.listing_id));
      l.reserved -= item.quantity;
      if (reached != ReservationState::kCommitted) l.quantity += item.quantity;
      l.version += 1;
      l.updated_at_ms = now_ms;
      AGORA_RETURN_IF_ERROR(SaveStock(tx, l));
      AGORA_RETURN_IF_ERROR(events::AppendToOutbox(tx, make_event(l, reached)));
      ids.push_back(l.id);
    }
    AGORA_RETURN_IF_ERROR(tx.Exec("catalog.finish_reservation",
                                  "UPDATE reservations SET state = $2, finished_at_ms = $3 WHERE id = $1",
                                  {r.id, std::string(ReservationStateName(reached)), now_ms}));
    r.state = reached;
    return r;
  });
  if (result.ok() && !ids.empty()) Committed(ids);
  return result;
}

Result<std::vector<std::string>> SqlCatalogStore::ExpiredReservations(int64_t now_ms, int limit) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows, db_.Exec("catalog.expired_reservations",
                                                 "SELECT id FROM reservations WHERE state = 'held' AND "
                                                 "expires_at_ms <= $1 ORDER BY expires_at_ms LIMIT $2",
                                                 {now_ms, int64_t{limit}}));
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.Text(0));
  return out;
}

Result<std::vector<events::Event>> SqlCatalogStore::EventsAfter(int64_t after_seq, int limit) {
  return events::ReadOutbox(db_, after_seq, limit);
}

Result<int64_t> SqlCatalogStore::LastEventSeq() { return events::LastOutboxSeq(db_); }

}  // namespace agora::catalog
