#include "services/search/index/document.h"

#include <boost/json.hpp>

#include "core/clock.h"
#include "services/search/domain/query.h"

namespace agora::search {
namespace {

std::string_view StringField(const boost::json::object& o, std::string_view key) {
  if (const auto* v = o.if_contains(key); v && v->is_string()) return v->get_string();
  return {};
}

int64_t IntField(const boost::json::object& o, std::string_view key, int64_t fallback) {
  if (const auto* v = o.if_contains(key)) {
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  }
  return fallback;
}

}  // namespace

uint16_t CategoryTable::Intern(const std::string& id, std::string_view name, int64_t seq) {
  if (id.empty()) return 0;
  auto it = index_of.find(id);
  if (it != index_of.end()) {
    const uint16_t i = it->second;
    if (!name.empty() && seq >= seqs[i]) {
      if (names[i] != name) names[i] = std::string(name);
      seqs[i] = seq;
    }
    return i;
  }
  if (ids.size() >= 0xFFFF) return 0;
  const auto idx = static_cast<uint16_t>(ids.size());
  ids.push_back(id);
  names.emplace_back(name);
  seqs.push_back(name.empty() ? 0 : seq);
  index_of.emplace(id, idx);
  return idx;
}

int64_t CategoryTable::SeqOf(const std::string& id) const {
  auto it = index_of.find(id);
  return it == index_of.end() ? 0 : seqs[it->second];
}

std::string CategoryTable::ToJson() const {
  boost::json::array a;
  a.reserve(ids.size());
  for (size_t i = 1; i < ids.size(); ++i) a.push_back(boost::json::array{ids[i], names[i], seqs[i]});
  return boost::json::serialize(a);
}

CategoryTable CategoryTable::FromJson(std::string_view json) {
  CategoryTable t;
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  if (ec || !v.is_array()) return t;
  for (const auto& e : v.get_array()) {
    // [id, name, seq]; folders written before names carried a seq: [id, name].
    const auto* a = e.if_array();
    if (!a || a->size() < 2 || a->size() > 3 || !(*a)[0].is_string() || !(*a)[1].is_string()) continue;
    const int64_t seq = a->size() == 3 && (*a)[2].is_int64() ? (*a)[2].get_int64() : 0;
    t.Intern(std::string((*a)[0].get_string()), (*a)[1].get_string(), seq);
  }
  return t;
}

Xapian::TermGenerator NewTermGenerator(Xapian::WritableDatabase* spelling_db) {
  Xapian::TermGenerator tg;
  tg.set_stemmer(Xapian::Stem("en"));
  // Stems only (Z prefix): half the terms of STEM_SOME; queries stem the same way.
  tg.set_stemming_strategy(Xapian::TermGenerator::STEM_ALL_Z);
  if (spelling_db != nullptr) {
    tg.set_database(*spelling_db);
    tg.set_flags(Xapian::TermGenerator::FLAG_SPELLING);
  }
  return tg;
}

std::string Snippet(std::string_view description) {
  std::string_view cut = Utf8Prefix(description, kSnippetCodePoints);
  std::string out(cut);
  if (cut.size() < description.size()) out += "\xE2\x80\xA6";  // …
  return out;
}

bool IsActive(const boost::json::object& listing) { return StringField(listing, "status") == "active"; }

Result<Xapian::Document> BuildDocument(const boost::json::object& listing, CategoryTable& categories,
                                       Xapian::TermGenerator& tg, int64_t seq, Xapian::Document* spelling) {
  const std::string id(StringField(listing, "id"));
  const int64_t version = IntField(listing, "version", -1);
  if (id.empty() || version < 0) return Error::InvalidArgument("listing payload without id or version");

  Xapian::Document doc;
  tg.set_document(doc);
  // The words that feed the spelling dictionary, when the caller collects
  // them itself (unstemmed, one per occurrence, as FLAG_SPELLING adds them).
  Xapian::TermGenerator spell;
  if (spelling != nullptr) {
    spell.set_stemming_strategy(Xapian::TermGenerator::STEM_NONE);
    spell.set_document(*spelling);
  }
  auto index_spelled = [&](const std::string& text, Xapian::termcount wdf) {
    tg.index_text_without_positions(text, wdf);
    if (spelling != nullptr) spell.index_text_without_positions(text);
  };
  const std::string title(StringField(listing, "title"));
  const std::string_view description = StringField(listing, "description");
  index_spelled(title, 3);
  // Descriptions feed the index but not the spelling dictionary: it would
  // double the indexing cost for suggestions nobody needs.
  const auto flags = tg.set_flags(Xapian::TermGenerator::flags(0), Xapian::TermGenerator::flags(0));
  tg.index_text_without_positions(std::string(description));
  tg.set_flags(flags);

  uint16_t leaf = 0;
  if (const auto* path = listing.if_contains("category_path"); path && path->is_array()) {
    for (const auto& step : path->get_array()) {
      if (!step.is_object()) continue;
      const std::string cid(StringField(step.get_object(), "id"));
      const std::string_view name = StringField(step.get_object(), "name");
      if (cid.empty()) continue;
      doc.add_boolean_term("C" + cid);
      leaf = categories.Intern(cid, name, seq);
      if (!name.empty()) index_spelled(std::string(name), 1);
    }
  }
  if (const std::string cat(StringField(listing, "category_id")); !cat.empty()) {
    doc.add_boolean_term("C" + cat);
    leaf = categories.Intern(cat, "");
  }
  if (const auto* attrs = listing.if_contains("attributes"); attrs && attrs->is_object()) {
    for (const auto& [k, v] : attrs->get_object()) {
      index_spelled(std::string(k.data(), k.size()), 1);
      if (v.is_string()) index_spelled(std::string(v.get_string()), 1);
    }
  }

  doc.add_boolean_term("Q" + id);
  if (auto seller = StringField(listing, "seller_id"); !seller.empty()) doc.add_boolean_term("U" + std::string(seller));
  const std::string_view condition = StringField(listing, "condition");
  if (!condition.empty()) doc.add_boolean_term("K" + std::string(condition));
  const int64_t quantity = IntField(listing, "quantity", 0);
  bool in_stock = quantity > 0;
  if (const auto* s = listing.if_contains("in_stock"); s && s->is_bool()) in_stock = s->get_bool();
  doc.add_boolean_term(in_stock ? "I1" : "I0");

  int64_t amount = 0;
  if (const auto* price = listing.if_contains("price"); price && price->is_object()) {
    amount = IntField(price->get_object(), "amount", 0);
    if (auto cur = StringField(price->get_object(), "currency"); !cur.empty()) {
      doc.add_boolean_term("M" + std::string(cur));
    }
  }
  const int64_t published = IntField(listing, "published_at_ms", IntField(listing, "created_at_ms", 0));
  doc.add_value(kSlotPrice, Xapian::sortable_serialise(static_cast<double>(amount)));
  doc.add_value(kSlotPublished, Xapian::sortable_serialise(static_cast<double>(published)));
  doc.add_value(kSlotVersion, std::to_string(version));
  FacetKey key;
  key.category = leaf;
  const int ci = ConditionIndex(condition);
  key.condition = ci < 0 ? 255 : static_cast<uint8_t>(ci);
  key.price_bucket = static_cast<uint8_t>(PriceBucket(amount));
  doc.add_value(kSlotFacet, PackFacetKey(key));

  Xapian::TermGenerator words;
  words.set_stemming_strategy(Xapian::TermGenerator::STEM_NONE);
  words.set_document(doc);
  words.index_text_without_positions(title, 1, "S");

  boost::json::object data = listing;
  // Search hits show the public listing: no owner-only or internal fields.
  for (const char* internal : {"description", "reserved", "created_at_ms", "published_at_ms"}) data.erase(internal);
  data["snippet"] = Snippet(description);
  data["in_stock"] = in_stock;
  doc.set_data(boost::json::serialize(data));
  // Xapian's reference counts are not atomic: hold no reference to the
  // document in `tg` once it is handed back (it may go to another thread).
  tg.set_document(Xapian::Document());
  if (spelling != nullptr) spell.set_document(Xapian::Document());
  return doc;
}

}  // namespace agora::search
