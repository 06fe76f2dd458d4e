// Small string helpers shared by services.
#pragma once

#include <string_view>
#include <vector>

namespace agora {

// The pieces of `s` between `sep`s, empty ones included ("a,,b" gives "a",
// "", "b"; "a," gives "a", ""), so callers can refuse empty items. An empty
// `s` gives no pieces. The views point into `s`.
std::vector<std::string_view> SplitList(std::string_view s, char sep = ',');

}  // namespace agora
