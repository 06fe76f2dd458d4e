// What other services may ask of the catalog. In `agora serve` the
// in-process implementation (catalog::Module::client()) calls the domain
// directly; a distributed deployment swaps in an HTTP implementation with
// the same interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/events/events.h"
#include "core/result.h"
#include "services/catalog/domain/types.h"

namespace agora::catalog {

class CatalogClient {
 public:
  virtual ~CatalogClient() = default;

  // --- for orders ---------------------------------------------------------
  // One listing as anyone may see it (kNotFound unless active).
  virtual Result<Listing> GetActiveListing(std::string_view id) = 0;
  // Holds `items` for `ttl`, all or nothing: kFailedPrecondition (type
  // "insufficient-stock", naming the listing) when one cannot be held,
  // kNotFound when a listing is not active. Stock never goes negative.
  virtual Result<Reservation> Reserve(std::string_view owner, const std::vector<ReservationItem>& items,
                                      std::chrono::milliseconds ttl) = 0;
  // Makes a held reservation final (the stock is sold). kFailedPrecondition
  // type "reservation-not-held" if it was released or has expired (a commit
  // after its time expires it); committing twice is a no-op.
  virtual Result<Reservation> CommitReservation(std::string_view reservation_id) = 0;
  // Gives held stock back. Releasing a released or expired one is a no-op;
  // kFailedPrecondition if it was committed.
  virtual Result<Reservation> ReleaseReservation(std::string_view reservation_id) = 0;

  // --- for the search read model ------------------------------------------
  // Every category.
  virtual Result<std::vector<Category>> Categories() = 0;
  // Listings of every status in id order, after `after_id` ("" = from the
  // start), at most `limit`, with category_path filled (for a rebuild).
  virtual Result<std::vector<Listing>> ListingsAfter(std::string_view after_id, int limit) = 0;
  // Catalog events from the outbox with sequence > `after_seq`, in sequence
  // order, at most `limit`; Event::seq is set (for catching up after a crash).
  virtual Result<std::vector<events::Event>> EventsAfter(int64_t after_seq, int limit) = 0;
  // The highest outbox sequence now (0 when empty).
  virtual Result<int64_t> LastEventSeq() = 0;
};

}  // namespace agora::catalog
