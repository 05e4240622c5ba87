// Pixel filters: the Thumbor filters that change pixels after the crop and resize
// (Thumbor's post-transform phase), parsed into typed values and applied to a cv::Mat.
//
// Arguments follow Thumbor's syntax (integers, decimals, `true`/`false`, optionally quoted strings,
// blanks allowed around commas) and meaning, with ranges enforced: anything out of range or
// unparsable is a 400 that names the filter. Pixel arithmetic follows Thumbor's filters
// (integer brightness and contrast steps, its saturation and colorize blends), so the same URL
// looks the same. Like Thumbor, filters of this phase run in reverse URL order.
//
// Deliberate differences: noise() is seeded from the image size, so one URL always gives the
// same bytes (and one ETag); rotate() refuses angles that are not multiples of 90 instead of
// ignoring them.
//
// Thread-safety: pure functions over values.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "conf/base/status.h"
#include "transform/colour.h"

namespace cv {
class Mat;
}

namespace thimble::transform {

struct Brightness {
  int amount;
};  // -100..100 (% of 255 added)
struct Contrast {
  int amount;
};  // -100..100
struct Rgb {
  int red, green, blue;
};  // -100..100 each (% of 255 added)
struct Saturation {
  double change;
};  // 0 = grey, 1 = unchanged, >1 = more
struct Grayscale {};
struct Equalize {};
struct Blur {
  int radius;
  double sigma;
};  // radius 0..150, sigma > 0
struct Convolution {
  std::vector<double> kernel;  // row-major, normalised already when asked
  int columns;
};
struct Noise {
  int amount;
};  // 0..100
struct Rotate {
  int degrees;
};  // 0, 90, 180, 270 (counter-clockwise, as Thumbor)
struct Colorize {
  int red_pct, green_pct, blue_pct;  // 0..100 blend towards the colour
  std::array<std::uint8_t, 3> rgb;
};
struct Proportion {
  double factor;
};  // resize the result by this factor
// fill(colour[, fill_transparent]): pads the result to the requested box, centred.
struct Fill {
  enum class Kind : std::uint8_t { kColour, kAuto, kBlur } kind = Kind::kColour;
  Colour colour;                  // for kColour (`transparent` has alpha 0)
  bool fill_transparent = false;  // also paint the image's own transparent pixels
};
// background_color(colour): composites a transparent image onto the colour.
struct BackgroundColour {
  Colour colour;
};
// curve(all, r, g, b): tone curves through control points (natural cubic splines), as tables.
struct Curve {
  std::array<std::uint8_t, 256> all, red, green, blue;
};
// watermark(image, x, y, alpha[, w_ratio[, h_ratio]]): another image of the same source pasted on
// top. A position is pixels (negative: from the right/bottom), `Np` percent, `center` or
// `repeat` (tiled); alpha is the mark's transparency in percent; the ratios bound the mark to a
// percentage of the image's width/height.
struct WatermarkPosition {
  enum class Kind : std::uint8_t { kPixels, kPercent, kCenter, kRepeat } kind = Kind::kPixels;
  int value = 0;          // pixels or percent
  bool negative = false;  // measured from the right/bottom (`-0` counts)
  bool operator==(const WatermarkPosition&) const = default;
};
struct Watermark {
  std::string image;  // a source key, like the main image's
  WatermarkPosition x, y;
  int alpha = 0;                                 // 0 opaque .. 100 invisible
  std::optional<int> width_ratio, height_ratio;  // percent of the image
};

// sharpen(amount, radius, luminance_only): wavelet sharpening as Thumbor's (five levels of an
// a-trous decomposition; each level's detail amplified by amount*exp(-(level-radius)^2/1.5)+1).
struct Sharpen {
  double amount, radius;
  bool luminance_only;
};
// round_corner(a|b, r, g, b[, transparent]): elliptical corners of radii a (across) and b (down),
// painted in the colour, or made transparent.
struct RoundCorner {
  int a_radius, b_radius;
  std::array<std::uint8_t, 3> rgb;
  bool transparent = false;
};

using PixelOp = std::variant<Brightness, Contrast, Rgb, Saturation, Grayscale, Equalize, Blur,
                             Convolution, Noise, Rotate, Colorize, Proportion, Fill,
                             BackgroundColour, Curve, RoundCorner, Sharpen, Watermark>;

struct PixelFilter {
  PixelOp op;
  std::string canonical;  // normalised `name(args)`, part of the spec's canonical form
};

// Parses one pixel filter call; nullopt when `name` is not a pixel filter.
// Failure is Code::kBadRequest naming the filter and the expected arguments.
std::optional<Result<PixelFilter>> parse_pixel_filter(std::string_view name, std::string_view args);

// Decoded watermark images by source key (8-bit BGRA), prepared by the pipeline.
using WatermarkImages = std::map<std::string, cv::Mat>;

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

// Argument helpers shared by every filter parser.
std::vector<std::string_view> split_arguments(std::string_view args);
std::optional<int> integer_argument(std::string_view text);
std::optional<double> decimal_argument(std::string_view text);
std::optional<bool> boolean_argument(std::string_view text);

}  // namespace thimble::transform
