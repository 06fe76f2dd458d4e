#include "services/catalog/domain/types.h"

#include <algorithm>

#include "services/catalog/domain/store.h"

namespace agora::catalog {

const char* StatusName(ListingStatus s) {
  switch (s) {
    case ListingStatus::kDraft: return "draft";
    case ListingStatus::kActive: return "active";
    case ListingStatus::kArchived: return "archived";
  }
  return "draft";
}

std::optional<ListingStatus> ParseStatus(std::string_view s) {
  if (s == "draft") return ListingStatus::kDraft;
  if (s == "active") return ListingStatus::kActive;
  if (s == "archived") return ListingStatus::kArchived;
  return std::nullopt;
}

bool IsCondition(std::string_view s) {
  return std::any_of(std::begin(kConditions), std::end(kConditions), [s](const char* c) { return s == c; });
}

const char* ReservationStateName(ReservationState s) {
  switch (s) {
    case ReservationState::kHeld: return "held";
    case ReservationState::kCommitted: return "committed";
    case ReservationState::kReleased: return "released";
    case ReservationState::kExpired: return "expired";
  }
  return "held";
}

const char* SortName(Sort s) {
  switch (s) {
    case Sort::kNewest: return "newest";
    case Sort::kPriceAsc: return "price_asc";
    case Sort::kPriceDesc: return "price_desc";
  }
  return "newest";
}

std::optional<Sort> ParseSort(std::string_view s) {
  if (s == "newest") return Sort::kNewest;
  if (s == "price_asc") return Sort::kPriceAsc;
  if (s == "price_desc") return Sort::kPriceDesc;
  return std::nullopt;
}

}  // namespace agora::catalog
