// Realistic, varied listings for `agora seed-demo` and the benchmarks:
// titles, descriptions, prices, conditions and attributes drawn from a
// per-category vocabulary, over the default category tree. Deterministic
// for a given seed.
#pragma once

#include <cstdint>
#include <vector>

#include "services/catalog/domain/service.h"

namespace agora::catalog {

// `count` listings; `index_base` numbers them (so batches differ) and `seed`
// picks the sequence. Every input passes ValidateListingInput.
std::vector<ListingInput> DemoListings(size_t count, uint64_t seed, uint64_t index_base);

}  // namespace agora::catalog
