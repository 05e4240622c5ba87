// Colour: parsing the colours Thumbor URLs name, as PIL reads them: a CSS colour name
// (case-insensitive), hexadecimal `rgb`, `rrggbb` or `rrggbbaa` (URLs cannot carry `#`, but a
// leading one is accepted), or `transparent`.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace thimble::transform {

struct Colour {
  std::uint8_t r = 0, g = 0, b = 0, a = 255;
  bool operator==(const Colour&) const = default;
};

std::optional<Colour> parse_colour(std::string_view text);

}  // namespace thimble::transform
