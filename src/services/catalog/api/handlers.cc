#include "services/catalog/api/handlers.h"

#include <charconv>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/crypto/encoding.h"
#include "core/crypto/hash.h"
#include "core/http/conditional.h"
#include "core/http/json_body.h"
#include "core/http/problem.h"
#include "core/http/query.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strings.h"
#include "services/catalog/domain/listing_json.h"

namespace agora::catalog {
namespace {

using http::Execution;
using http::MakeRoute;
using http::Method;
using http::Request;
using http::Response;

constexpr const char* kSeller = "seller";
constexpr const char* kAdmin = "admin";

Response ServiceProblem(const Request& req, const Error& error) {
  if (error.type == "foreign-key") {
    // A row this change refers to went away meanwhile (a category deleted
    // concurrently); the driver's text stays in the log.
    log::Warn("catalog request lost a race", {{"request_id", req.request_id}, {"error", error.message}});
    return http::ProblemFrom(Error::Conflict("Something this change refers to was changed at the same time; retry"));
  }
  if (error.type == "stale-version") return http::ProblemFrom(error, 412);
  if (error.type == "precondition-required") return http::ProblemFrom(error, 428);
  return http::ServiceProblem(req, error, "catalog");
}

Actor ActorOf(const Request& req) { return Actor{req.principal->user_id, req.principal->HasRole(kAdmin)}; }

std::string ETagOf(int64_t version) { return fmt::format("\"v{}\"", version); }

// The version an If-Match header names: nullopt when absent; "*" matches any
// version (0 means "no check"); anything else that is not one of our ETags
// can never match.
Result<std::optional<int64_t>> IfMatchVersion(const Request& req) {
  auto h = req.headers.Get("If-Match");
  if (!h) return std::optional<int64_t>();
  std::string_view v = *h;
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v == "*") return std::optional<int64_t>();
  int64_t n = 0;
  if (v.size() > 3 && v.substr(0, 2) == "\"v" && v.back() == '"') {
    std::string_view digits = v.substr(2, v.size() - 3);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec == std::errc() && end == digits.data() + digits.size() && n > 0) return std::optional<int64_t>(n);
  }
  // Never equal to a real version: answers 412.
  return std::optional<int64_t>(-1);
}

Response ListingResponse(int status, const Listing& l, bool owner_view) {
  Response r = Response::Json(status, ListingToJson(l, owner_view));
  r.headers.Set("ETag", ETagOf(l.version));
  r.headers.Set("Cache-Control", "private, no-cache");
  return r;
}

std::optional<Money> ReadMoney(json::FieldReader& r, std::string_view key, bool required) {
  const boost::json::object* o = r.Object(key, required);
  if (o == nullptr) return std::nullopt;
  json::FieldReader m(*o, r.Name(key) + ".");
  auto amount = m.Int("amount", true, 0, Limits::kPriceMax);
  auto currency = m.String("currency", true, 3, 3);
  const bool ok = !m.has_errors();
  m.FinishInto(r);
  if (!ok || !amount || !currency) return std::nullopt;
  return Money{*amount, *currency};
}

void ReadListingFields(json::FieldReader& r, ListingInput& in, bool create) {
  // Lengths are checked by ValidateListingInput; the reader only bounds them
  // loosely so an oversized value is reported once, with the real limit.
  in.title = r.String("title", create, 0, 100000);
  in.description = r.String("description", false, 0, 1000000);
  in.price = ReadMoney(r, "price", create);
  in.quantity = r.Int("quantity", false, 0, Limits::kQuantityMax);
  in.category_id = r.String("category_id", create, 1, 64);
  in.condition = r.String("condition", create, 1, 20);
  if (const auto* attrs = r.Object("attributes", false)) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& kv : *attrs) {
      if (!kv.value().is_string()) {
        r.AddError("attributes." + std::string(kv.key()), "must be a string");
        continue;
      }
      out.emplace_back(kv.key(), kv.value().as_string());
    }
    in.attributes = std::move(out);
  }
  if (const auto* images = r.Array("images", false, Limits::kImagesMax)) {
    std::vector<std::string> out;
    for (size_t i = 0; i < images->size(); ++i) {
      if (!(*images)[i].is_string()) {
        r.AddError(fmt::format("images.{}", i), "must be a string");
        continue;
      }
      out.emplace_back((*images)[i].as_string());
    }
    in.images = std::move(out);
  }
  if (const auto* shipping = r.Array("shipping", false, Limits::kShippingMax)) {
    std::vector<ShippingOption> out;
    for (size_t i = 0; i < shipping->size(); ++i) {
      const std::string field = fmt::format("shipping.{}", i);
      if (!(*shipping)[i].is_object()) {
        r.AddError(field, "must be an object");
        continue;
      }
      json::FieldReader s((*shipping)[i].as_object(), field + ".");
      auto method = s.String("method", true, 1, 40);
      auto price = ReadMoney(s, "price", true);
      auto min_days = s.Int("min_days", false, 0, 365);
      auto max_days = s.Int("max_days", false, 0, 365);
      const bool ok = !s.has_errors();
      s.FinishInto(r);
      if (ok && method && price) {
        out.push_back({*method, *price, static_cast<int>(min_days.value_or(0)),
                       static_cast<int>(max_days.value_or(min_days.value_or(0)))});
      }
    }
    in.shipping = std::move(out);
  }
}

// --- cursors ---------------------------------------------------------------

// A short digest of the filters a cursor was made for, so a cursor cannot be
// replayed against another list.
std::string FilterDigest(const BrowseQuery& q, std::string_view category) {
  std::string canon = fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}", q.seller_scope,
                                  q.status ? StatusName(*q.status) : "", category,
                                  q.min_price ? std::to_string(*q.min_price) : "",
                                  q.max_price ? std::to_string(*q.max_price) : "", q.currency, q.seller_id,
                                  fmt::join(q.conditions, ","), q.in_stock ? (*q.in_stock ? "1" : "0") : "");
  return crypto::HexEncode(crypto::Sha256(canon).substr(0, 8));
}

std::string EncodeCursor(const crypto::CursorCodec& codec, const BrowseQuery& q, std::string_view digest,
                         const PageKey& key) {
  return codec.Encode({{"s", SortName(q.sort)}, {"f", digest}, {"k", key.key}, {"i", key.id}});
}

Status DecodeCursor(const crypto::CursorCodec& codec, std::string_view cursor, BrowseQuery& q,
                    std::string_view digest) {
  AGORA_ASSIGN_OR_RETURN(boost::json::object o, codec.Decode(cursor));
  const auto* s = o.if_contains("s");
  const auto* f = o.if_contains("f");
  const auto* k = o.if_contains("k");
  const auto* i = o.if_contains("i");
  if (!s || !f || !k || !i || !s->is_string() || !f->is_string() || !k->is_int64() || !i->is_string() ||
      s->as_string() != SortName(q.sort) || f->as_string() != digest) {
    return Error::InvalidArgument("The cursor belongs to another list or sort order; start again without it",
                                  {{"cursor", "does not match the other parameters"}})
        .WithType("invalid-cursor");
  }
  q.after = PageKey{k->as_int64(), std::string(i->as_string())};
  return Ok();
}

// Reads the browse parameters shared by the public list and "my listings".
Result<BrowseQuery> ReadBrowseQuery(const Request& req, CatalogService& svc, const crypto::CursorCodec& cursors,
                                    bool mine, std::string& digest) {
  http::QueryReader r(req.query);
  BrowseQuery q;
  if (mine) {
    q.seller_scope = req.principal->user_id;
    if (auto status = r.String("status", 20)) {
      q.status = ParseStatus(*status);
      if (!q.status) r.AddError("status", "must be draft, active or archived");
    }
  }
  auto category = r.String("category", 64);
  q.min_price = r.Int("min_price", 0, Limits::kPriceMax);
  q.max_price = r.Int("max_price", 0, Limits::kPriceMax);
  if (q.min_price && q.max_price && *q.min_price > *q.max_price) {
    r.AddError("max_price", "must not be below min_price");
  }
  if (auto currency = r.String("currency", 3)) {
    if (!IsIsoCurrency(*currency)) r.AddError("currency", "must be an ISO 4217 code in upper case");
    q.currency = *currency;
  }
  if (!mine) {
    if (auto seller = r.String("seller", 64)) q.seller_id = *seller;
  }
  if (auto conditions = r.String("condition", 100)) {
    for (std::string_view c : SplitList(*conditions)) {
      if (!IsCondition(c)) {
        r.AddError("condition", "must be new, like_new, good, fair or poor (comma-separated)");
        break;
      }
      q.conditions.emplace_back(c);
    }
  }
  q.in_stock = r.Bool("in_stock");
  if (auto sort = r.String("sort", 20)) {
    auto parsed = ParseSort(*sort);
    if (!parsed || (mine && *parsed != Sort::kNewest)) {
      r.AddError("sort", mine ? "must be newest" : "must be newest, price_asc or price_desc");
    } else {
      q.sort = *parsed;
    }
  }
  q.limit = static_cast<int>(r.Int("limit", 1, Limits::kListLimitMax).value_or(Limits::kListLimitDefault));
  auto cursor = r.String("cursor", 2048);
  AGORA_RETURN_IF_ERROR(r.Finish());
  if (category) {
    auto ids = svc.CategoryWithDescendants(*category);
    if (!ids.ok()) {
      if (ids.error().code == ErrorCode::kNotFound) {
        return Error::Validation({{"category", "is not a known category"}});
      }
      return std::move(ids).error();
    }
    q.category_ids = std::move(*ids);
  }
  digest = FilterDigest(q, category.value_or(""));
  if (cursor) AGORA_RETURN_IF_ERROR(DecodeCursor(cursors, *cursor, q, digest));
  return q;
}

Response PageResponse(const Request& req, const ListingPage& page, const BrowseQuery& q, std::string_view digest,
                      const crypto::CursorCodec& cursors, bool owner_view, bool cacheable) {
  boost::json::array data;
  for (const auto& l : page.listings) data.push_back(ListingToJson(l, owner_view));
  boost::json::object body{{"data", std::move(data)}};
  if (page.next) {
    body["next_cursor"] = EncodeCursor(cursors, q, digest, *page.next);
  } else {
    body["next_cursor"] = nullptr;
  }
  return http::Conditional(req, Response::Json(200, body), cacheable ? "public, max-age=5" : "private, no-cache");
}

boost::json::object CategoryNodeJson(const CategoryNode& n) {
  boost::json::object o = CategoryToJson(n.category);
  boost::json::array kids;
  for (const auto& k : n.children) kids.push_back(CategoryNodeJson(k));
  o["children"] = std::move(kids);
  return o;
}

void ReadCategoryFields(json::FieldReader& r, const boost::json::object& body, CategoryInput& in, bool create) {
  in.name = r.String("name", create, 1, Limits::kCategoryNameMax);
  in.slug = r.String("slug", false, 1, 60);
  // parent_id: null means "make it a root" on PATCH, so read it by hand.
  if (const auto* p = body.if_contains("parent_id")) {
    if (p->is_null()) {
      if (!create) in.parent_id = "";
      (void)r.String("parent_id", false, 0, 64);  // marks it seen
    } else {
      in.parent_id = r.String("parent_id", false, 1, 64);
    }
  }
  in.position = r.Int("position", false, 0, 1'000'000);
}

}  // namespace

void AddRoutes(http::App& app, CatalogService& svc, const crypto::CursorCodec& cursors, bool inline_reads) {
  auto seller_route = [](Method m, std::string pattern, http::Handler h, std::vector<std::string> roles) {
    http::Route route = MakeRoute(m, std::move(pattern), Execution::kBlocking, std::move(h));
    route.authenticated = true;
    route.roles = std::move(roles);
    return route;
  };
  const std::vector<std::string> owners = {kSeller, kAdmin};

  app.Add(seller_route(Method::kPost, "/v1/products", [&svc](Request& req) {
    ListingInput in;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) { ReadListingFields(r, in, true); })) return *bad;
    auto l = svc.CreateListing(ActorOf(req), in);
    if (!l.ok()) return ServiceProblem(req, l.error());
    Response r = ListingResponse(201, *l, true);
    r.headers.Set("Location", "/v1/products/" + l->id);
    return r;
  }, {kSeller}));

  {
    http::Route get = MakeRoute(Method::kGet, "/v1/products/{id}", inline_reads ? Execution::kInline : Execution::kBlocking,
                                [&svc](Request& req) {
      std::optional<Actor> actor;
      if (req.principal) actor = ActorOf(req);
      auto l = svc.GetListing(actor ? &*actor : nullptr, req.PathParam("id"));
      if (!l.ok()) return ServiceProblem(req, l.error());
      const bool owner = actor && (actor->admin || actor->user_id == l->seller_id);
      const std::string etag = ETagOf(l->version);
      const std::string cache = actor ? "private, no-cache" : "public, max-age=5";
      Response r = ListingResponse(200, *l, owner);
      r.headers.Set("Vary", "Authorization");
      return http::Conditional(req, std::move(r), cache, etag);
    });
    get.optional_authentication = true;
    app.Add(std::move(get));
  }

  app.Add(seller_route(Method::kPatch, "/v1/products/{id}", [&svc](Request& req) {
    auto version = IfMatchVersion(req);
    if (!req.headers.Has("If-Match") || !version.ok()) {
      return ServiceProblem(req, Error::FailedPrecondition("Send If-Match with the ETag you read; updates are "
                                                           "refused without it")
                                     .WithType("precondition-required"));
    }
    ListingInput in;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) { ReadListingFields(r, in, false); })) return *bad;
    // "*" (any version) reads as nullopt: whatever version is current.
    auto l = svc.UpdateListing(ActorOf(req), req.PathParam("id"), *version, in);
    if (!l.ok()) return ServiceProblem(req, l.error());
    return ListingResponse(200, *l, true);
  }, owners));

  app.Add(seller_route(Method::kDelete, "/v1/products/{id}", [&svc](Request& req) {
    auto l = svc.ArchiveListing(ActorOf(req), req.PathParam("id"), *IfMatchVersion(req));
    if (!l.ok()) return ServiceProblem(req, l.error());
    return Response::Empty(204);
  }, owners));

  app.Add(seller_route(Method::kPost, "/v1/products/{id}/publish", [&svc](Request& req) {
    auto l = svc.PublishListing(ActorOf(req), req.PathParam("id"), *IfMatchVersion(req));
    if (!l.ok()) return ServiceProblem(req, l.error());
    return ListingResponse(200, *l, true);
  }, owners));

  app.Add(seller_route(Method::kPost, "/v1/products/{id}/unpublish", [&svc](Request& req) {
    auto l = svc.UnpublishListing(ActorOf(req), req.PathParam("id"), *IfMatchVersion(req));
    if (!l.ok()) return ServiceProblem(req, l.error());
    return ListingResponse(200, *l, true);
  }, owners));

  app.Add(seller_route(Method::kPost, "/v1/products/{id}/inventory", [&svc](Request& req) {
    std::optional<int64_t> delta, quantity;
    std::optional<std::string> reason;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
          delta = r.Int("delta", false, -Limits::kQuantityMax, Limits::kQuantityMax);
          quantity = r.Int("quantity", false, 0, Limits::kQuantityMax);
          reason = r.String("reason", false, 1, 200);
          if (!r.has_errors()) {
            if (delta.has_value() == quantity.has_value()) {
              r.AddError("delta", "give exactly one of delta and quantity");
            } else if (delta && *delta == 0) {
              r.AddError("delta", "must not be 0");
            }
          }
        })) {
      return *bad;
    }
    auto l = svc.AdjustInventory(ActorOf(req), req.PathParam("id"), delta, quantity, *IfMatchVersion(req),
                                 reason.value_or(""));
    if (!l.ok()) return ServiceProblem(req, l.error());
    return ListingResponse(200, *l, true);
  }, owners));

  app.Add(MakeRoute(Method::kGet, "/v1/products", Execution::kBlocking, [&svc, &cursors](Request& req) {
    std::string digest;
    auto q = ReadBrowseQuery(req, svc, cursors, false, digest);
    if (!q.ok()) return ServiceProblem(req, q.error());
    auto page = svc.Browse(*q);
    if (!page.ok()) return ServiceProblem(req, page.error());
    return PageResponse(req, *page, *q, digest, cursors, false, true);
  }));

  app.Add(seller_route(Method::kGet, "/v1/sellers/me/products", [&svc, &cursors](Request& req) {
    std::string digest;
    auto q = ReadBrowseQuery(req, svc, cursors, true, digest);
    if (!q.ok()) return ServiceProblem(req, q.error());
    auto page = svc.Browse(*q);
    if (!page.ok()) return ServiceProblem(req, page.error());
    return PageResponse(req, *page, *q, digest, cursors, true, false);
  }, {kSeller}));

  // --- categories ---
  app.Add(MakeRoute(Method::kGet, "/v1/categories", Execution::kBlocking, [&svc](Request& req) {
    auto tree = svc.CategoryTree();
    if (!tree.ok()) return ServiceProblem(req, tree.error());
    boost::json::array data;
    for (const auto& n : *tree) data.push_back(CategoryNodeJson(n));
    return http::Conditional(
        req, Response::Json(200, boost::json::object{{"data", std::move(data)}, {"next_cursor", nullptr}}),
        "public, max-age=60");
  }));

  app.Add(MakeRoute(Method::kGet, "/v1/categories/{id}", Execution::kBlocking, [&svc](Request& req) {
    auto d = svc.GetCategory(req.PathParam("id"));
    if (!d.ok()) return ServiceProblem(req, d.error());
    boost::json::object o = CategoryToJson(d->category);
    boost::json::array path, kids;
    for (const auto& p : d->path) path.push_back(boost::json::object{{"id", p.id}, {"name", p.name}});
    for (const auto& k : d->children) kids.push_back(CategoryToJson(k));
    o["path"] = std::move(path);
    o["children"] = std::move(kids);
    return http::Conditional(req, Response::Json(200, o), "public, max-age=60");
  }));

  app.Add(seller_route(Method::kPost, "/v1/categories", [&svc](Request& req) {
    CategoryInput in;
    auto body = json::ParseObject(req.body);
    if (!body.ok()) return http::ProblemFrom(body.error());
    json::FieldReader r(*body);
    ReadCategoryFields(r, *body, in, true);
    if (Status s = r.Finish(); !s.ok()) return http::ProblemFrom(s.error());
    auto c = svc.CreateCategory(in);
    if (!c.ok()) return ServiceProblem(req, c.error());
    Response resp = Response::Json(201, CategoryToJson(*c));
    resp.headers.Set("Location", "/v1/categories/" + c->id);
    return resp;
  }, {kAdmin}));

  app.Add(seller_route(Method::kPatch, "/v1/categories/{id}", [&svc](Request& req) {
    CategoryInput in;
    auto body = json::ParseObject(req.body);
    if (!body.ok()) return http::ProblemFrom(body.error());
    json::FieldReader r(*body);
    ReadCategoryFields(r, *body, in, false);
    if (Status s = r.Finish(); !s.ok()) return http::ProblemFrom(s.error());
    auto c = svc.UpdateCategory(req.PathParam("id"), in);
    if (!c.ok()) return ServiceProblem(req, c.error());
    return Response::Json(200, CategoryToJson(*c));
  }, {kAdmin}));

  app.Add(seller_route(Method::kDelete, "/v1/categories/{id}", [&svc](Request& req) {
    Status s = svc.DeleteCategory(req.PathParam("id"));
    if (!s.ok()) return ServiceProblem(req, s.error());
    return Response::Empty(204);
  }, {kAdmin}));
}

}  // namespace agora::catalog
