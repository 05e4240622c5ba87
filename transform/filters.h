// Pixel filters: the Thumbor filters that change pixels after the crop and resize (Thumbor's
// post-transform phase), parsed into typed values and applied to a cv::Mat.
//
// Each filter is one entry of a registry (transform/filters/registry.cpp), kept with its family
// (colour, blur and sharpen, geometry, background, watermark) in transform/filters/: its name, the
// parser of its arguments, its effect on pixels and, where it has one, its effect on the output
// size, on the background a JPEG is flattened onto, and the server limits it is held to. Adding a
// filter touches its family's file only.
//
// Arguments follow Thumbor's syntax (transform/filters/arguments.h) and meaning, with ranges
// enforced: anything out of range or unparsable is a 400 that names the filter. Pixel arithmetic
// follows Thumbor's filters (integer brightness and contrast steps, its saturation and colorize
// blends), so the same URL looks the same. Like Thumbor, filters of this phase run in reverse URL
// order.
//
// Deliberate differences: noise() is seeded from the image size, so one URL always gives the
// same bytes (and one ETag); rotate() refuses angles that are not multiples of 90 instead of
// ignoring them.
//
// Thread-safety: parsed filters are immutable values, shared freely.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conf/base/status.h"
#include "transform/colour.h"
#include "transform/filters/arguments.h"
#include "transform/spec_limits.h"

namespace cv {
class Mat;
}

namespace thimble::transform {

// Decoded watermark images by source key (8-bit BGRA), prepared by the pipeline.
using WatermarkImages = std::map<std::string, cv::Mat>;

// What a filter sees besides the image.
struct FilterCanvas {
  int box_width = 0, box_height = 0;       // what fill() pads to; 0 on a side: the image's own
  const WatermarkImages* marks = nullptr;  // every watermark image the URL's filters name
};

// One parsed filter call.
class FilterEffect {
 public:
  virtual ~FilterEffect() = default;
  // Changes an 8-bit BGR or BGRA image (it may add or drop the alpha channel, or resize it).
  virtual void apply(cv::Mat& image, const FilterCanvas& canvas) const = 0;
  // The size a width x height image has after this filter, given fill()'s box.
  virtual std::pair<int, int> size_after(std::pair<int, int> size, std::pair<int, int>) const {
    return size;
  }
  // Whether it pads the result to the requested box (fill()).
  virtual bool pads_to_box() const { return false; }
  // The colour a JPEG result is flattened onto, when this filter names one.
  virtual std::optional<Colour> flatten_colour() const { return std::nullopt; }
  // The source key of the image it pastes, for the filters that paste one (watermark()).
  virtual const std::string* image_key() const { return nullptr; }
  // Ok, or the 400 for the server limit this call exceeds; `canonical` names the call.
  virtual Status within(const SpecLimits&, const std::string& /*canonical*/) const {
    return Status::Ok();
  }
};

struct PixelFilter {
  std::shared_ptr<const FilterEffect> effect;
  std::string canonical;  // normalised `name(args)`, part of the spec's canonical form
};

// Parses one pixel filter call; nullopt when `name` is not a pixel filter.
// Failure is Code::kBadRequest naming the filter and the expected arguments.
std::optional<Result<PixelFilter>> parse_pixel_filter(std::string_view name, std::string_view args);

// Applies `filters` to an 8-bit BGR or BGRA image, in Thumbor's order (last in the URL first).
// `box_width`/`box_height` is what fill() pads to; 0 on a side means the image's own side.
// `marks` holds every watermark image the filters name.
void apply_pixel_filters(cv::Mat& image, const std::vector<PixelFilter>& filters, int box_width = 0,
                         int box_height = 0, const WatermarkImages* marks = nullptr);

// The source keys of the watermark images `filters` need, in order, without repeats.
std::vector<std::string> watermark_keys(const std::vector<PixelFilter>& filters);

// Most watermark() calls one URL can carry (SpecLimits::max_watermarks is the configured limit).
inline constexpr int kMaxWatermarks = 16;

// The size `filters` turn a width x height image into (rotate, proportion and fill change it).
std::pair<int, int> size_after_filters(int width, int height,
                                       const std::vector<PixelFilter>& filters, int box_width,
                                       int box_height);

// Whether any filter pads the result to the requested box.
bool pads_to_box(const std::vector<PixelFilter>& filters);

// The colour a JPEG is flattened onto: the first background_color() or opaque fill() colour in
// the URL, else white.
Colour flatten_colour(const std::vector<PixelFilter>& filters);

// Ok, or the 400 for the first filter over one of `limits` (watermark() calls counted too).
Status check_filter_limits(const std::vector<PixelFilter>& filters, const SpecLimits& limits);

}  // namespace thimble::transform
