// How a listing becomes a Xapian document, and the names of the index's
// terms and value slots. Used by the writer, Reindex and the searcher, which
// must agree on every prefix and slot. Internal to the search service.
//
// Only active listings are documents, so no query needs an "active" filter
// (a positive filter term on every document halved the faceted query rate:
// each match then costs a skip_to on a 100,000-entry posting list). A listing
// that stops being active is deleted and leaves a tombstone, metadata key
// "t:<listing id>" = its version, so an older event cannot bring it back.
//
// Terms (boolean filters have a prefix, text terms none):
//   Q<listing id>  unique id
//   C<cat id>      every id of the category path (root ... leaf)
//   U<seller id>   K<condition>        I1 / I0  in stock or not
//   M<currency>    S<word>  title words, unstemmed (suggest)
//   Z<stem>        English stems of title (wdf 3), description, category
//                  names, attribute keys and values
// Values: kSlotPrice (sortable_serialise(amount)), kSlotPublished
// (sortable_serialise(ms)), kSlotVersion (decimal), kSlotFacet (PackFacetKey).
// Data: the listing JSON without "description", with "snippet".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/json/object.hpp>
#include <xapian.h>

#include "core/result.h"
#include "services/catalog/domain/types.h"

namespace agora::search {

inline constexpr Xapian::valueno kSlotPrice = 0;
inline constexpr Xapian::valueno kSlotPublished = 1;
inline constexpr Xapian::valueno kSlotVersion = 2;
inline constexpr Xapian::valueno kSlotFacet = 3;

inline constexpr const char* kMetaTombstonePrefix = "t:";
inline constexpr const char* kMetaCatalogSeq = "catalog_seq";
inline constexpr const char* kMetaCategories = "categories";

inline constexpr size_t kSnippetCodePoints = 160;

// Category ids and names, with a small stable index per id for the packed
// facet key (index 0 = none). Index positions never change once given.
// Each name remembers the catalog seq of the event it came from, so an old
// category event (redelivered, or replayed by catch-up) never restores an
// old name.
struct CategoryTable {
  std::vector<std::string> ids;    // [index] -> id ("" at 0)
  std::vector<std::string> names;  // [index] -> current name
  std::vector<int64_t> seqs;       // [index] -> seq of the event that set the name
  std::unordered_map<std::string, uint16_t> index_of;

  CategoryTable() : ids(1), names(1), seqs(1, 0) {}
  // The index of `id`, adding it if new; 0 when the table is full (65,535
  // categories). A non-empty `name` replaces the current one unless the
  // current one came from a later event (seq above `seq`).
  uint16_t Intern(const std::string& id, std::string_view name, int64_t seq = 0);
  // The seq that set the name of `id` (0: none, or unknown id).
  int64_t SeqOf(const std::string& id) const;
  std::string ToJson() const;
  static CategoryTable FromJson(std::string_view json);
};

// Builds the document for an active `listing` (the event payload shape). Interns its
// category path in `categories`. `tg` carries the stemmer and, when spelling
// data is wanted, the database and FLAG_SPELLING. kInvalidArgument when the
// payload lacks "id" or "version".
// `seq` is the catalog seq of the event (category names in its path update
// the table as of that seq). With `spelling`, the words that feed the
// spelling dictionary are also indexed into *spelling (unstemmed, wdf = the
// number of occurrences) for the caller to add with add_spelling: then `tg`
// needs no database, and the document can be built on another thread than
// the one writing the index.
Result<Xapian::Document> BuildDocument(const boost::json::object& listing, CategoryTable& categories,
                                       Xapian::TermGenerator& tg, int64_t seq = 0,
                                       Xapian::Document* spelling = nullptr);

// A TermGenerator set up for BuildDocument; `spelling_db` may be null.
Xapian::TermGenerator NewTermGenerator(Xapian::WritableDatabase* spelling_db);

// True when the payload's "status" is "active".
bool IsActive(const boost::json::object& listing);

// The first kSnippetCodePoints code points of `description`, at a UTF-8
// boundary, with "…" appended when cut.
std::string Snippet(std::string_view description);

}  // namespace agora::search
