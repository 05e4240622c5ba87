// What a family of filters (colour.cpp, blur.cpp, geometry.cpp, background.cpp, watermark.cpp)
// gives the registry: a table of entries, each a filter's name and the parser that turns its
// arguments into a FilterEffect and its canonical text. Internal to transform/filters/.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "transform/filters.h"

namespace thimble::transform::filters {

// One call as written in the URL.
struct Call {
  std::string_view name;
  std::string_view args;                 // between the parentheses, as written
  std::vector<std::string_view> values;  // split_arguments(args)

  // The parsed filter: `effect`, canonically written `name(canonical_args)`.
  template <class Effect>
  Result<PixelFilter> made(Effect effect, const std::string& canonical_args) const {
    return PixelFilter{std::make_shared<const Effect>(std::move(effect)),
                       std::string(name) + "(" + canonical_args + ")"};
  }
  // The 400 for arguments that do not parse: `name(args): expected <expected>`.
  Status fail(std::string_view expected) const {
    std::string message(name);
    message.append("(").append(args).append("): expected ").append(expected);
    return {Code::kBadRequest, std::move(message)};
  }
};

using Parser = Result<PixelFilter> (*)(const Call& call);

struct Entry {
  std::string_view name;
  Parser parse;
};

// The families' tables (one per file).
std::span<const Entry> colour_filters();      // brightness, contrast, rgb, saturation, ...
std::span<const Entry> blur_filters();        // blur, sharpen, convolution, noise
std::span<const Entry> geometry_filters();    // rotate, proportion, round_corner
std::span<const Entry> background_filters();  // fill, background_color
std::span<const Entry> watermark_filters();   // watermark

}  // namespace thimble::transform::filters
