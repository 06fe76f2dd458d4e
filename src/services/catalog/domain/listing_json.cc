#include "services/catalog/domain/listing_json.h"

#include <boost/json.hpp>

#include "core/clock.h"

namespace agora::catalog {
namespace {

std::string Rfc3339Ms(int64_t ms) { return FormatRfc3339(TimePoint(std::chrono::milliseconds(ms))); }

boost::json::object MoneyJson(const Money& m) { return {{"amount", m.amount}, {"currency", m.currency}}; }

}  // namespace

boost::json::object ListingToJson(const Listing& l, bool owner_view) {
  boost::json::object attributes;
  for (const auto& [k, v] : l.attributes) attributes[k] = v;
  boost::json::array images;
  for (const auto& url : l.images) images.emplace_back(url);
  boost::json::array shipping;
  for (const auto& s : l.shipping) {
    shipping.push_back(boost::json::object{
        {"method", s.method}, {"price", MoneyJson(s.price)}, {"min_days", s.min_days}, {"max_days", s.max_days}});
  }
  boost::json::array path;
  for (const auto& c : l.category_path) path.push_back(boost::json::object{{"id", c.id}, {"name", c.name}});
  boost::json::object o{
      {"id", l.id},
      {"seller_id", l.seller_id},
      {"title", l.title},
      {"description", l.description},
      {"price", MoneyJson(l.price)},
      {"quantity", l.quantity},
      {"in_stock", l.quantity > 0},
      {"category_id", l.category_id},
      {"category_path", std::move(path)},
      {"condition", l.condition},
      {"attributes", std::move(attributes)},
      {"images", std::move(images)},
      {"shipping", std::move(shipping)},
      {"status", StatusName(l.status)},
      {"version", l.version},
      {"created_at", Rfc3339Ms(l.created_at_ms)},
      {"updated_at", Rfc3339Ms(l.updated_at_ms)},
  };
  if (l.published_at_ms) {
    o["published_at"] = Rfc3339Ms(*l.published_at_ms);
  } else {
    o["published_at"] = nullptr;
  }
  if (owner_view) o["reserved"] = l.reserved;
  return o;
}

boost::json::object ListingEventPayload(const Listing& l) {
  boost::json::object o = ListingToJson(l, /*owner_view=*/true);
  o["created_at_ms"] = l.created_at_ms;
  if (l.published_at_ms) {
    o["published_at_ms"] = *l.published_at_ms;
  } else {
    o["published_at_ms"] = nullptr;
  }
  return o;
}

boost::json::object InventoryEventPayload(const Listing& l, std::string_view reason) {
  return {{"listing_id", l.id},          {"quantity", l.quantity}, {"reserved", l.reserved},
          {"version", l.version},        {"status", StatusName(l.status)}, {"reason", reason}};
}

boost::json::object CategoryToJson(const Category& c) {
  boost::json::object o{{"id", c.id}, {"name", c.name}, {"slug", c.slug}, {"position", c.position}};
  if (c.parent_id.empty()) {
    o["parent_id"] = nullptr;
  } else {
    o["parent_id"] = c.parent_id;
  }
  return o;
}

}  // namespace agora::catalog
