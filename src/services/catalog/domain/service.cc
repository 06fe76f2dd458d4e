#include "services/catalog/domain/service.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/id.h"
#include "core/json.h"
#include "services/catalog/domain/listing_json.h"
#include "services/catalog/events.h"

namespace agora::catalog {
namespace {

constexpr size_t kMaxReservationItems = 100;

Error ListingNotFound() { return Error::NotFound("No such listing").WithType("listing-not-found"); }
Error CategoryNotFound() { return Error::NotFound("No such category").WithType("category-not-found"); }
Error Archived() {
  return Error::FailedPrecondition("The listing is archived and can no longer change").WithType("listing-archived");
}

bool CanChange(const Actor& actor, const Listing& l) { return actor.admin || actor.user_id == l.seller_id; }

events::Event MakeEvent(const char* type, const boost::json::object& payload, int64_t now_ms) {
  return events::Event{"", type, event_types::kSource, boost::json::serialize(payload), now_ms};
}

Status CheckVersion(const Listing& l, std::optional<int64_t> if_match) {
  if (if_match && *if_match != l.version) {
    return Error::FailedPrecondition(
               fmt::format("The listing changed since you read it (now version {}); read it again", l.version))
        .WithType("stale-version");
  }
  return Ok();
}

bool IsSlug(std::string_view s) {
  return !s.empty() && s.size() <= 60 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::string Slugify(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      out += c;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 50) out.resize(50);
  return out.empty() ? "category" : out;
}

}  // namespace

CatalogService::CatalogService(CatalogOptions options, CatalogStore& store, const Clock& clock)
    : options_(options), store_(store), clock_(clock) {}

// --- categories -------------------------------------------------------------

Result<std::shared_ptr<const CatalogService::CategoryIndex>> CatalogService::Categories_() {
  const int64_t now = clock_.NowMillis();
  uint64_t generation = 0;
  {
    std::lock_guard lock(categories_mu_);
    if (categories_ && now - categories_loaded_ms_ < options_.category_cache_ms) return categories_;
    generation = categories_generation_;
  }
  AGORA_ASSIGN_OR_RETURN(std::vector<Category> all, store_.LoadCategories());
  auto index = std::make_shared<CategoryIndex>();
  for (auto& c : all) {
    index->children[c.parent_id].push_back(c.id);
    index->by_id.emplace(c.id, std::move(c));
  }
  for (auto& [parent, kids] : index->children) {
    std::sort(kids.begin(), kids.end(), [&](const std::string& a, const std::string& b) {
      const Category& ca = index->by_id.at(a);
      const Category& cb = index->by_id.at(b);
      return std::tie(ca.position, ca.name, ca.id) < std::tie(cb.position, cb.name, cb.id);
    });
  }
  std::lock_guard lock(categories_mu_);
  // A write since this load started: use what was read, but do not keep it.
  if (generation == categories_generation_) {
    categories_ = index;
    categories_loaded_ms_ = now;
  }
  return std::shared_ptr<const CategoryIndex>(index);
}

void CatalogService::ForgetCategories() {
  std::lock_guard lock(categories_mu_);
  ++categories_generation_;
  categories_.reset();
}

std::vector<CategoryRef> CatalogService::CategoryIndex::PathOf(std::string_view id) const {
  std::vector<CategoryRef> path;
  std::string cur(id);
  for (size_t depth = 0; depth <= Limits::kCategoryDepthMax + 1 && !cur.empty(); ++depth) {
    auto it = by_id.find(cur);
    if (it == by_id.end()) break;
    path.push_back({it->second.id, it->second.name});
    cur = it->second.parent_id;
  }
  std::reverse(path.begin(), path.end());
  return path;
}

std::vector<std::string> CatalogService::CategoryIndex::SelfAndDescendants(std::string_view id) const {
  // Visited set: the tree has no cycles (moves are checked in the write
  // transaction), but a reader must never loop if it ever had one.
  std::vector<std::string> out{std::string(id)};
  std::unordered_set<std::string> seen{std::string(id)};
  for (size_t i = 0; i < out.size(); ++i) {
    auto it = children.find(out[i]);
    if (it == children.end()) continue;
    for (const auto& kid : it->second) {
      if (seen.insert(kid).second) out.push_back(kid);
    }
  }
  return out;
}

Status CatalogService::FillPath(Listing& l) {
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  l.category_path = cats->PathOf(l.category_id);
  return Ok();
}

Result<std::vector<CategoryNode>> CatalogService::CategoryTree() {
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  std::function<CategoryNode(const std::string&)> build = [&](const std::string& id) {
    CategoryNode node{cats->by_id.at(id), {}};
    if (auto it = cats->children.find(id); it != cats->children.end()) {
      for (const auto& kid : it->second) node.children.push_back(build(kid));
    }
    return node;
  };
  std::vector<CategoryNode> roots;
  if (auto it = cats->children.find(""); it != cats->children.end()) {
    for (const auto& id : it->second) roots.push_back(build(id));
  }
  return roots;
}

Result<CategoryDetail> CatalogService::GetCategory(std::string_view id) {
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  auto it = cats->by_id.find(std::string(id));
  if (it == cats->by_id.end()) return CategoryNotFound();
  CategoryDetail d{it->second, cats->PathOf(id), {}};
  if (auto kids = cats->children.find(std::string(id)); kids != cats->children.end()) {
    for (const auto& k : kids->second) d.children.push_back(cats->by_id.at(k));
  }
  return d;
}

Result<std::vector<std::string>> CatalogService::CategoryWithDescendants(std::string_view id) {
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  if (!cats->by_id.contains(std::string(id))) return CategoryNotFound();
  return cats->SelfAndDescendants(id);
}

Status CatalogService::CheckCategoryInput(const CategoryInput& in, bool create, const CategoryIndex& cats,
                                          std::string_view self_id) {
  std::vector<FieldError> errors;
  if (create && !in.name) errors.push_back({"name", "is required"});
  if (in.name) {
    const size_t n = json::Utf8Length(*in.name);
    if (n < 1 || n > Limits::kCategoryNameMax) {
      errors.push_back({"name", fmt::format("must be 1 to {} characters long", Limits::kCategoryNameMax)});
    }
  }
  if (in.slug && !IsSlug(*in.slug)) errors.push_back({"slug", "must be 1 to 60 characters from a-z, 0-9 and -"});
  if (in.position && (*in.position < 0 || *in.position > 1'000'000)) {
    errors.push_back({"position", "must be from 0 to 1000000"});
  }
  if (!errors.empty()) return Error::Validation(std::move(errors));
  if (in.parent_id && !in.parent_id->empty()) {
    if (!cats.by_id.contains(*in.parent_id)) {
      return Error::NotFound("The parent category does not exist").WithType("category-not-found");
    }
    auto path = cats.PathOf(*in.parent_id);
    if (!self_id.empty() &&
        std::any_of(path.begin(), path.end(), [&](const CategoryRef& r) { return r.id == self_id; })) {
      return Error::Conflict("A category cannot move under itself or its descendants").WithType("category-cycle");
    }
    // Depth of the new node: the parent's path plus itself (plus its own
    // subtree when moving).
    size_t subtree = 0;
    if (!self_id.empty()) {
      std::function<size_t(const std::string&, size_t)> height = [&](const std::string& id, size_t depth) -> size_t {
        size_t h = 0;
        if (auto it = cats.children.find(id); it != cats.children.end() && depth <= Limits::kCategoryDepthMax) {
          for (const auto& k : it->second) h = std::max(h, 1 + height(k, depth + 1));
        }
        return h;
      };
      subtree = height(std::string(self_id), 0);
    }
    if (path.size() + 1 + subtree > Limits::kCategoryDepthMax) {
      return Error::Validation({{"parent_id", fmt::format("the tree may be at most {} levels deep",
                                                          Limits::kCategoryDepthMax)}});
    }
  }
  return Ok();
}

Result<Category> CatalogService::CreateCategory(const CategoryInput& in) {
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  AGORA_RETURN_IF_ERROR(CheckCategoryInput(in, true, *cats, ""));
  const int64_t now = clock_.NowMillis();
  Category c{NewId("cat_", clock_), in.parent_id.value_or(""), *in.name,
             in.slug.value_or(Slugify(*in.name)), in.position.value_or(0), now, now};
  AGORA_RETURN_IF_ERROR(
      store_.InsertCategory(c, MakeEvent(event_types::kCategoryCreated, CategoryToJson(c), now)));
  ForgetCategories();
  return c;
}

Result<Category> CatalogService::UpdateCategory(std::string_view id, const CategoryInput& in) {
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  auto it = cats->by_id.find(std::string(id));
  if (it == cats->by_id.end()) return CategoryNotFound();
  // A quick check against the cached tree for a clear answer; the store
  // checks moves again against the committed tree.
  AGORA_RETURN_IF_ERROR(CheckCategoryInput(in, false, *cats, id));
  const int64_t now = clock_.NowMillis();
  auto c = store_.UpdateCategory(id, in, now, [&](const Category& saved) {
    return MakeEvent(event_types::kCategoryUpdated, CategoryToJson(saved), now);
  });
  ForgetCategories();
  return c;
}

Status CatalogService::DeleteCategory(std::string_view id) {
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  auto it = cats->by_id.find(std::string(id));
  if (it == cats->by_id.end()) return CategoryNotFound();
  const int64_t now = clock_.NowMillis();
  AGORA_RETURN_IF_ERROR(
      store_.DeleteCategory(id, MakeEvent(event_types::kCategoryDeleted, CategoryToJson(it->second), now)));
  ForgetCategories();
  return Ok();
}

Result<std::vector<Category>> CatalogService::Categories() {
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  std::vector<Category> out;
  out.reserve(cats->by_id.size());
  for (const auto& [id, c] : cats->by_id) out.push_back(c);
  return out;
}

// --- listings -----------------------------------------------------------------

void CatalogService::Apply(Listing& l, const ListingInput& in) {
  if (in.title) l.title = *in.title;
  if (in.description) l.description = *in.description;
  if (in.price) l.price = *in.price;
  if (in.quantity) l.quantity = *in.quantity;
  if (in.category_id) l.category_id = *in.category_id;
  if (in.condition) l.condition = *in.condition;
  if (in.attributes) l.attributes = *in.attributes;
  if (in.images) l.images = *in.images;
  if (in.shipping) l.shipping = *in.shipping;
}

Status CatalogService::ValidateInput(const ListingInput& in, bool create) {
  std::vector<FieldError> errors = ValidateListingInput(in, create);
  if (errors.empty() && in.category_id) {
    AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
    if (!cats->by_id.contains(*in.category_id)) errors.push_back({"category_id", "is not a known category"});
  }
  if (!errors.empty()) return Error::Validation(std::move(errors));
  return Ok();
}

Result<Listing> CatalogService::CreateListing(const Actor& actor, const ListingInput& in) {
  AGORA_RETURN_IF_ERROR(ValidateInput(in, /*create=*/true));
  const int64_t now = clock_.NowMillis();
  Listing l;
  l.id = NewId("prd_", clock_);
  l.seller_id = actor.user_id;
  Apply(l, in);
  l.status = ListingStatus::kDraft;
  l.version = 1;
  l.created_at_ms = l.updated_at_ms = now;
  AGORA_RETURN_IF_ERROR(FillPath(l));
  AGORA_RETURN_IF_ERROR(
      store_.InsertListings({l}, {MakeEvent(event_types::kListingCreated, ListingEventPayload(l), now)}));
  return l;
}

Result<int> CatalogService::CreateListingsBulk(std::string_view seller_id, const std::vector<ListingInput>& inputs,
                                               bool publish) {
  std::vector<Listing> listings;
  std::vector<events::Event> evs;
  listings.reserve(inputs.size());
  evs.reserve(inputs.size());
  for (const auto& in : inputs) {
    AGORA_RETURN_IF_ERROR(ValidateInput(in, /*create=*/true));
    const int64_t now = clock_.NowMillis();
    Listing l;
    l.id = NewId("prd_", clock_);
    l.seller_id = std::string(seller_id);
    Apply(l, in);
    l.status = publish ? ListingStatus::kActive : ListingStatus::kDraft;
    l.created_at_ms = l.updated_at_ms = now;
    if (publish) l.published_at_ms = now;
    AGORA_RETURN_IF_ERROR(FillPath(l));
    evs.push_back(MakeEvent(event_types::kListingCreated, ListingEventPayload(l), now));
    listings.push_back(std::move(l));
  }
  AGORA_RETURN_IF_ERROR(store_.InsertListings(listings, evs));
  return static_cast<int>(listings.size());
}

Result<Listing> CatalogService::GetListing(const Actor* actor, std::string_view id) {
  AGORA_ASSIGN_OR_RETURN(Listing l, store_.FindListing(id));
  if (l.status != ListingStatus::kActive && (actor == nullptr || !CanChange(*actor, l))) return ListingNotFound();
  AGORA_RETURN_IF_ERROR(FillPath(l));
  return l;
}

Result<Listing> CatalogService::GetActiveListing(std::string_view id) { return GetListing(nullptr, id); }

Result<Listing> CatalogService::Mutate(const Actor& actor, std::string_view id, const char* event_type,
                                       const std::function<Status(Listing&)>& change) {
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  const int64_t now = clock_.NowMillis();
  return store_.MutateListing(
      id, now,
      [&](Listing& l) -> Status {
        if (!CanChange(actor, l)) return ListingNotFound();
        return change(l);
      },
      [&](const Listing& saved) {
        Listing with_path = saved;
        with_path.category_path = cats->PathOf(saved.category_id);
        return MakeEvent(event_type, ListingEventPayload(with_path), now);
      });
}

Result<Listing> CatalogService::WithPath(Result<Listing> l) {
  if (!l.ok()) return l;
  AGORA_RETURN_IF_ERROR(FillPath(*l));
  return l;
}

Result<Listing> CatalogService::UpdateListing(const Actor& actor, std::string_view id, std::optional<int64_t> if_match,
                                              const ListingInput& in) {
  AGORA_RETURN_IF_ERROR(ValidateInput(in, /*create=*/false));
  return WithPath(Mutate(actor, id, event_types::kListingUpdated, [&](Listing& l) -> Status {
    AGORA_RETURN_IF_ERROR(CheckVersion(l, if_match));
    if (l.status == ListingStatus::kArchived) return Archived();
    Apply(l, in);
    return Ok();
  }));
}

Result<Listing> CatalogService::PublishListing(const Actor& actor, std::string_view id,
                                               std::optional<int64_t> if_match) {
  bool changed = true;
  auto r = Mutate(actor, id, event_types::kListingUpdated, [&](Listing& l) -> Status {
    AGORA_RETURN_IF_ERROR(CheckVersion(l, if_match));
    if (l.status == ListingStatus::kArchived) return Archived();
    if (l.status == ListingStatus::kActive) {
      changed = false;
      return Error::FailedPrecondition("unchanged").WithType("unchanged");
    }
    l.status = ListingStatus::kActive;
    if (!l.published_at_ms) l.published_at_ms = clock_.NowMillis();
    return Ok();
  });
  if (!changed) return GetListing(&actor, id);
  return WithPath(std::move(r));
}

Result<Listing> CatalogService::UnpublishListing(const Actor& actor, std::string_view id,
                                                 std::optional<int64_t> if_match) {
  bool changed = true;
  auto r = Mutate(actor, id, event_types::kListingUpdated, [&](Listing& l) -> Status {
    AGORA_RETURN_IF_ERROR(CheckVersion(l, if_match));
    if (l.status == ListingStatus::kArchived) return Archived();
    if (l.status == ListingStatus::kDraft) {
      changed = false;
      return Error::FailedPrecondition("unchanged").WithType("unchanged");
    }
    l.status = ListingStatus::kDraft;
    return Ok();
  });
  if (!changed) return GetListing(&actor, id);
  return WithPath(std::move(r));
}

Result<Listing> CatalogService::ArchiveListing(const Actor& actor, std::string_view id,
                                               std::optional<int64_t> if_match) {
  return WithPath(Mutate(actor, id, event_types::kListingArchived, [&](Listing& l) -> Status {
    AGORA_RETURN_IF_ERROR(CheckVersion(l, if_match));
    if (l.status == ListingStatus::kArchived) return Archived();
    l.status = ListingStatus::kArchived;
    return Ok();
  }));
}

Result<Listing> CatalogService::AdjustInventory(const Actor& actor, std::string_view id,
                                                std::optional<int64_t> delta, std::optional<int64_t> set,
                                                std::optional<int64_t> if_match, std::string_view reason) {
  if (delta.has_value() == set.has_value()) {
    return Error::Validation({{"delta", "give exactly one of delta and quantity"}});
  }
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  const int64_t now = clock_.NowMillis();
  const std::string why = reason.empty() ? "adjustment" : std::string(reason);
  return WithPath(store_.MutateListing(
      id, now,
      [&](Listing& l) -> Status {
        if (!CanChange(actor, l)) return ListingNotFound();
        AGORA_RETURN_IF_ERROR(CheckVersion(l, if_match));
        if (l.status == ListingStatus::kArchived) return Archived();
        const int64_t next = set ? *set : l.quantity + *delta;
        if (next < 0) {
          return Error::FailedPrecondition(
                     fmt::format("Only {} available; stock cannot go below zero", l.quantity))
              .WithType("insufficient-stock");
        }
        if (next > Limits::kQuantityMax) {
          return Error::Validation(
              {{set ? "quantity" : "delta", fmt::format("stock may be at most {}", Limits::kQuantityMax)}});
        }
        l.quantity = next;
        return Ok();
      },
      [&](const Listing& saved) {
        return MakeEvent(event_types::kInventoryChanged, InventoryEventPayload(saved, why), now);
      }));
}

Result<ListingPage> CatalogService::Browse(const BrowseQuery& q) {
  AGORA_ASSIGN_OR_RETURN(ListingPage page, store_.Browse(q));
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  for (auto& l : page.listings) l.category_path = cats->PathOf(l.category_id);
  return page;
}

Result<std::vector<Listing>> CatalogService::ListingsAfter(std::string_view after_id, int limit) {
  AGORA_ASSIGN_OR_RETURN(std::vector<Listing> out, store_.ListingsAfter(after_id, limit));
  AGORA_ASSIGN_OR_RETURN(auto cats, Categories_());
  for (auto& l : out) l.category_path = cats->PathOf(l.category_id);
  return out;
}

Result<std::vector<events::Event>> CatalogService::EventsAfter(int64_t after_seq, int limit) {
  return store_.EventsAfter(after_seq, limit);
}

Result<int64_t> CatalogService::LastEventSeq() { return store_.LastEventSeq(); }

// --- reservations ---------------------------------------------------------------

Result<Reservation> CatalogService::Reserve(std::string_view owner, const std::vector<ReservationItem>& items,
                                            std::chrono::milliseconds ttl) {
  if (items.empty() || items.size() > kMaxReservationItems) {
    return Error::Validation({{"items", fmt::format("must hold 1 to {} items", kMaxReservationItems)}});
  }
  if (ttl <= std::chrono::milliseconds::zero()) ttl = options_.default_reservation_ttl;
  ttl = std::min(ttl, options_.max_reservation_ttl);
  std::map<std::string, int64_t> merged;  // listing id order: a fixed lock order
  for (const auto& item : items) {
    if (item.quantity <= 0 || item.quantity > Limits::kQuantityMax) {
      return Error::Validation({{"items.quantity", fmt::format("must be from 1 to {}", Limits::kQuantityMax)}});
    }
    int64_t& q = merged[item.listing_id];
    q += item.quantity;
    if (q > Limits::kQuantityMax) {
      return Error::Validation({{"items.quantity", fmt::format("must be from 1 to {}", Limits::kQuantityMax)}});
    }
  }
  const int64_t now = clock_.NowMillis();
  Reservation r;
  r.id = NewId("rsv_", clock_);
  r.owner = std::string(owner);
  for (const auto& [id, q] : merged) r.items.push_back({id, q});
  r.state = ReservationState::kHeld;
  r.created_at_ms = now;
  r.expires_at_ms = now + ttl.count();
  AGORA_RETURN_IF_ERROR(store_.InsertReservation(r, now, [&](const Listing& l) {
    return MakeEvent(event_types::kInventoryChanged, InventoryEventPayload(l, "reserved"), now);
  }));
  return r;
}

Result<Reservation> CatalogService::Finish(std::string_view id, ReservationState to) {
  const int64_t now = clock_.NowMillis();
  return store_.FinishReservation(id, to, now, [&](const Listing& l, ReservationState reached) {
    const char* reason = reached == ReservationState::kCommitted ? "sold"
                         : reached == ReservationState::kExpired ? "reservation_expired"
                                                                 : "reservation_released";
    return MakeEvent(event_types::kInventoryChanged, InventoryEventPayload(l, reason), now);
  });
}

Result<Reservation> CatalogService::CommitReservation(std::string_view reservation_id) {
  AGORA_ASSIGN_OR_RETURN(Reservation r, Finish(reservation_id, ReservationState::kCommitted));
  if (r.state != ReservationState::kCommitted) {
    return Error::FailedPrecondition(fmt::format("The reservation was {}", ReservationStateName(r.state)))
        .WithType("reservation-not-held");
  }
  return r;
}

Result<Reservation> CatalogService::ReleaseReservation(std::string_view reservation_id) {
  AGORA_ASSIGN_OR_RETURN(Reservation r, Finish(reservation_id, ReservationState::kReleased));
  if (r.state == ReservationState::kCommitted) {
    return Error::FailedPrecondition("The reservation was committed").WithType("reservation-not-held");
  }
  return r;
}

Result<int> CatalogService::ExpireReservations() {
  AGORA_ASSIGN_OR_RETURN(std::vector<std::string> ids, store_.ExpiredReservations(clock_.NowMillis(), 500));
  int n = 0;
  for (const auto& id : ids) {
    AGORA_ASSIGN_OR_RETURN(Reservation r, Finish(id, ReservationState::kExpired));
    if (r.state == ReservationState::kExpired) ++n;
  }
  return n;
}

}  // namespace agora::catalog
