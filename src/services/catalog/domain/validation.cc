// Listing input rules that need no store: lengths, ranges, currency,
// condition, image URLs, attribute and shipping shapes.
#include <algorithm>
#include <array>
#include <string>

#include <fmt/format.h>

#include "core/json.h"
#include "services/catalog/domain/service.h"

namespace agora::catalog {
namespace {

// ISO 4217 active codes (2024 list), sorted for binary search.
constexpr std::array<std::string_view, 155> kCurrencies = {
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWL",
};

bool HasControlChars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Like HasControlChars, but newlines and tabs are fine (descriptions).
bool HasControlCharsExceptWhitespace(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f;
  });
}

void CheckText(std::vector<FieldError>& errors, const std::string& field, std::string_view s, size_t min, size_t max,
               bool multiline) {
  const size_t n = json::Utf8Length(s);
  if (n < min || n > max) {
    errors.push_back({field, fmt::format("must be {} to {} characters long", min, max)});
  } else if (multiline ? HasControlCharsExceptWhitespace(s) : HasControlChars(s)) {
    errors.push_back({field, "must not contain control characters"});
  }
}

void CheckMoney(std::vector<FieldError>& errors, const std::string& field, const Money& m) {
  if (m.amount < 0 || m.amount > Limits::kPriceMax) {
    errors.push_back({field + ".amount", fmt::format("must be an integer from 0 to {} (minor units)", Limits::kPriceMax)});
  }
  if (!IsIsoCurrency(m.currency)) {
    errors.push_back({field + ".currency", "must be an ISO 4217 currency code in upper case, such as EUR"});
  }
}

bool IsHttpsUrl(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.size() <= kScheme.size() || url.substr(0, kScheme.size()) != kScheme) return false;
  std::string_view rest = url.substr(kScheme.size());
  const size_t end = rest.find_first_of("/?#");
  std::string_view host = rest.substr(0, end);
  if (host.empty() || host.find('@') != std::string_view::npos) return false;  // no credentials in URLs
  return std::all_of(url.begin(), url.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '"' && c != '<' && c != '>' && c != '\\' && c != '`';
  });
}

}  // namespace

bool IsIsoCurrency(std::string_view code) {
  return std::binary_search(kCurrencies.begin(), kCurrencies.end(), code);
}

std::vector<FieldError> ValidateListingInput(const ListingInput& in, bool create) {
  std::vector<FieldError> errors;
  if (create) {
    for (auto [present, name] : {std::pair{in.title.has_value(), "title"}, std::pair{in.price.has_value(), "price"},
                                 std::pair{in.category_id.has_value(), "category_id"},
                                 std::pair{in.condition.has_value(), "condition"}}) {
      if (!present) errors.push_back({name, "is required"});
    }
  }
  if (in.title) CheckText(errors, "title", *in.title, Limits::kTitleMin, Limits::kTitleMax, false);
  if (in.description) CheckText(errors, "description", *in.description, 0, Limits::kDescriptionMax, true);
  if (in.price) CheckMoney(errors, "price", *in.price);
  if (in.quantity && (*in.quantity < 0 || *in.quantity > Limits::kQuantityMax)) {
    errors.push_back({"quantity", fmt::format("must be an integer from 0 to {}", Limits::kQuantityMax)});
  }
  if (in.condition && !IsCondition(*in.condition)) {
    errors.push_back({"condition", "must be one of new, like_new, good, fair, poor"});
  }
  if (in.attributes) {
    if (in.attributes->size() > Limits::kAttributesMax) {
      errors.push_back({"attributes", fmt::format("must have at most {} entries", Limits::kAttributesMax)});
    }
    for (const auto& [k, v] : *in.attributes) {
      CheckText(errors, "attributes." + k, k, 1, Limits::kAttributeKeyMax, false);
      CheckText(errors, "attributes." + k, v, 1, Limits::kAttributeValueMax, false);
    }
  }
  if (in.images) {
    if (in.images->size() > Limits::kImagesMax) {
      errors.push_back({"images", fmt::format("must have at most {} URLs", Limits::kImagesMax)});
    }
    for (size_t i = 0; i < in.images->size(); ++i) {
      const std::string& url = (*in.images)[i];
      if (url.size() > Limits::kImageUrlMax || !IsHttpsUrl(url)) {
        errors.push_back({fmt::format("images.{}", i),
                          fmt::format("must be an https URL of at most {} characters", Limits::kImageUrlMax)});
      }
    }
  }
  if (in.shipping) {
    if (in.shipping->size() > Limits::kShippingMax) {
      errors.push_back({"shipping", fmt::format("must have at most {} options", Limits::kShippingMax)});
    }
    for (size_t i = 0; i < in.shipping->size(); ++i) {
      const ShippingOption& s = (*in.shipping)[i];
      const std::string field = fmt::format("shipping.{}", i);
      CheckText(errors, field + ".method", s.method, 1, 40, false);
      CheckMoney(errors, field + ".price", s.price);
      if (s.min_days < 0 || s.max_days > 365 || s.min_days > s.max_days) {
        errors.push_back({field + ".max_days", "days must satisfy 0 <= min_days <= max_days <= 365"});
      }
    }
  }
  if (in.category_id && in.category_id->empty()) errors.push_back({"category_id", "is required"});
  return errors;
}

}  // namespace agora::catalog
