// The lexing of filter arguments, shared by every filter parser and by the settings filters:
// Thumbor's syntax (integers, decimals without exponents, true/false, 'single-quoted' strings,
// blanks allowed around commas) and the normal form each value is written back in.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thimble::transform {

// The arguments between a filter's parentheses, split at commas outside quotes and trimmed;
// none for blank text.
std::vector<std::string_view> split_arguments(std::string_view args);
// A whole number of at most 10 characters, nothing else.
std::optional<int> integer_argument(std::string_view text);
// Thumbor's DecimalNumber: -?(digits[.digits] | .digits); no exponents, no inf/nan.
std::optional<double> decimal_argument(std::string_view text);
// true/True/1 or false/False/0.
std::optional<bool> boolean_argument(std::string_view text);

// Exactly `count` integers within [lo, hi].
std::optional<std::vector<int>> integer_arguments(const std::vector<std::string_view>& args,
                                                  std::size_t count, int lo, int hi);
// `rrggbb`, optionally with a leading '#'.
std::optional<std::array<std::uint8_t, 3>> hex_colour(std::string_view text);
// `text` without one pair of surrounding single quotes.
std::string_view unquoted(std::string_view text);

// Shortest decimal text that reads back as `value` (2.5 → "2.5", 3.0 → "3", 2e7 → "20000000"):
// never an exponent, which decimal_argument() does not take.
std::string decimal_text(double value);
// `rrggbb` in lower-case hex.
std::string hex_text(const std::array<std::uint8_t, 3>& rgb);

}  // namespace thimble::transform
