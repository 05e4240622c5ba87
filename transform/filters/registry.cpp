// The registry of pixel filters: every family's table, looked up by name, and what the rest of
// transform/ asks of a URL's filters as a whole.
#include <algorithm>
#include <array>
#include <opencv2/core.hpp>

#include "transform/filters/family.h"

namespace thimble::transform {
namespace {

const filters::Entry* find_entry(std::string_view name) {
  static const std::array<std::span<const filters::Entry>, 5> families = {
      filters::colour_filters(), filters::blur_filters(), filters::geometry_filters(),
      filters::background_filters(), filters::watermark_filters()};
  for (std::span<const filters::Entry> family : families) {
    for (const filters::Entry& entry : family) {
      if (entry.name == name) return &entry;
    }
  }
  return nullptr;
}

}  // namespace

std::optional<Result<PixelFilter>> parse_pixel_filter(std::string_view name,
                                                      std::string_view args) {
  const filters::Entry* entry = find_entry(name);
  if (!entry) return std::nullopt;
  return entry->parse(filters::Call{name, args, split_arguments(args)});
}

void apply_pixel_filters(cv::Mat& image, const std::vector<PixelFilter>& filters, int box_width,
                         int box_height, const WatermarkImages* marks) {
  const FilterCanvas canvas{box_width, box_height, marks};
  // Thumbor runs the filters of one phase from the last in the URL to the first.
  for (auto it = filters.rbegin(); it != filters.rend(); ++it) it->effect->apply(image, canvas);
}

std::vector<std::string> watermark_keys(const std::vector<PixelFilter>& filters) {
  std::vector<std::string> keys;
  for (const PixelFilter& f : filters) {
    if (const std::string* key = f.effect->image_key();
        key && std::find(keys.begin(), keys.end(), *key) == keys.end()) {
      keys.push_back(*key);
    }
  }
  return keys;
}

std::pair<int, int> size_after_filters(int width, int height,
                                       const std::vector<PixelFilter>& filters, int box_width,
                                       int box_height) {
  std::pair<int, int> size{width, height};
  for (auto it = filters.rbegin(); it != filters.rend(); ++it) {
    size = it->effect->size_after(size, {box_width, box_height});
  }
  return size;
}

bool pads_to_box(const std::vector<PixelFilter>& filters) {
  return std::any_of(filters.begin(), filters.end(),
                     [](const PixelFilter& f) { return f.effect->pads_to_box(); });
}

Colour flatten_colour(const std::vector<PixelFilter>& filters) {
  for (const PixelFilter& f : filters) {
    if (std::optional<Colour> colour = f.effect->flatten_colour()) return *colour;
  }
  return Colour{255, 255, 255, 255};
}

Status check_filter_limits(const std::vector<PixelFilter>& filters, const SpecLimits& limits) {
  int watermarks = 0;
  for (const PixelFilter& f : filters) {
    if (Status within = f.effect->within(limits, f.canonical); !within.ok()) return within;
    if (f.effect->image_key() && ++watermarks > limits.max_watermarks) {
      return over_limit("the number of watermark() filters", limits.max_watermarks);
    }
  }
  return Status::Ok();
}

}  // namespace thimble::transform
