// Finds payment card numbers in text, so the gateway can refuse requests
// that carry card data (card data goes to the payment provider's
// tokenization endpoint, never to the API: that keeps the API out of PCI DSS
// scope).
//
// A card number here is 13 to 19 digits that pass the Luhn check, written
// together or in groups separated by single spaces or dashes
// ("4242 4242 4242 4242", "4242-4242-4242-4242"), standing on its own: not
// glued to letters, digits or a decimal point on either side. So an IBAN
// ("BE68539007547034": the digits follow letters), a longer digit string or
// a decimal are not matches.
#pragma once

#include <string_view>

namespace agora {

// Whether `text` holds a card number as described above anywhere.
bool ContainsCardNumber(std::string_view text);

// The Luhn (mod 10) check over a string of digits.
bool LuhnValid(std::string_view digits);

}  // namespace agora
