// ThumbnailSpec: what a Thumbor URL asks for, parsed once, strictly, into plain values.
//
// parse_spec() takes the signed part of a request path (after `/<signature>/`) and reads the
// optional segments in Thumbor's order (SPEC.md §1). Anything it cannot read with certainty is a
// 400 naming the problem: an unknown filter, bad arguments, a misplaced option segment. Thumbor
// ignores such junk silently, which lets any junk URL create a new cache entry.
//
// canonical() renders the options in one normal form (defaults left out, numbers normalised,
// filters in a fixed order), so two URLs that mean the same transform share one cache entry and
// one ETag. The image key stays exactly as sent (still percent-encoded).
//
// Thread-safety: a ThumbnailSpec is a value; treat it as immutable once parsed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/base/status.h"
#include "transform/filters.h"
#include "transform/image_format.h"
#include "transform/spec_limits.h"

namespace thimble::transform {

enum class FitMode : std::uint8_t {
  kCrop,       // default: crop to the target aspect ratio around the focal point, then resize
  kFitIn,      // fit inside the box, never crop, never upscale
  kFullFitIn,  // cover the box on its short side, never crop
};

enum class HAlign : std::uint8_t { kLeft, kCenter, kRight };
enum class VAlign : std::uint8_t { kTop, kMiddle, kBottom };

// One side of the requested size: 0/missing (proportional), pixels, or `orig`.
struct Length {
  enum class Kind : std::uint8_t { kAuto, kPixels, kOrig };
  Kind kind = Kind::kAuto;
  int pixels = 0;  // meaningful for kPixels; always > 0 then

  bool operator==(const Length&) const = default;
};

// A manual crop `AxB:CxD` in source pixels: left, top, right, bottom (exclusive).
struct CropBox {
  int left = 0, top = 0, right = 0, bottom = 0;
  bool operator==(const CropBox&) const = default;
};

// `trim[:top-left|:bottom-right][:tolerance]`: remove a border whose colour is within
// `tolerance` (Euclidean RGB distance, 0-442) of the chosen corner pixel's.
struct Trim {
  enum class Corner : std::uint8_t { kTopLeft, kBottomRight };
  Corner corner = Corner::kTopLeft;
  int tolerance = 0;
  bool operator==(const Trim&) const = default;
  // As written in a canonical URL: `trim`, `trim:bottom-right:10`, ...
  std::string text() const;
};

struct ThumbnailSpec {
  bool debug = false;  // debug/: the source with its focal points drawn, instead of the thumbnail
  bool meta = false;
  std::optional<Trim> trim;
  std::optional<CropBox> crop;
  FitMode fit = FitMode::kCrop;
  bool adaptive = false;  // swap the box when its orientation differs from the image's
  Length width, height;
  bool flip_horizontal = false;
  bool flip_vertical = false;
  HAlign halign = HAlign::kCenter;
  VAlign valign = VAlign::kMiddle;
  bool smart = false;  // centre the aspect crop on detected faces or features

  // Filters that set how the result is encoded or served.
  std::optional<int> quality;         // quality(0-100)
  bool auto_quality = false;          // quality(auto): the perceptual search (auto_quality.h)
  std::optional<ImageFormat> format;  // format(jpeg|png|webp)
  std::optional<int> max_age;         // max_age(seconds): this URL's Cache-Control max-age
  std::optional<int> max_bytes;       // max_bytes(N): JPEG/WebP re-encoded to fit in N bytes

  // Filters that change the geometry (Thumbor's pre-load and after-load phases).
  bool no_upscale = false;  // no_upscale(): requested sides are clamped to the source's
  bool upscale = false;     // upscale(): fit-in results smaller than the box are enlarged into it
  bool stretch = false;     // stretch(): resize to exactly WxH without the aspect crop
  // focal(LxT:RxB)...: explicit points of interest for the aspect crop, in the coordinates of the
  // image as shown (a box each, weighing its area, like a detected face).
  std::vector<CropBox> focal_boxes;
  // extract_focal(): set while parsing; the nested URL's crop is then in focal_boxes and its image
  // in `image` (see parse_spec).
  bool extract_focal = false;

  // Filters that change pixels after the resize, in URL order (applied last first).
  std::vector<PixelFilter> filters;

  std::string image;  // the source key, raw (still percent-encoded), never empty

  // The options in normal form, without the image: e.g. `fit-in/300x200/filters:quality(80)`.
  // Empty when the URL asks for the original unchanged.
  std::string canonical() const;

  // The canonical options and the image as one path that parses back to this spec. Defaults the
  // canonical form leaves out (`0x0`, `center`, `middle`) are spelled out when the image's first
  // segment would otherwise be read as an option (an image key `0x0/a.jpg`).
  std::string path() const;

 private:
  std::string canonical_options(bool spell_defaults) const;
};

// Largest width or height a URL may spell out; larger sizes are refused before any arithmetic.
inline constexpr int kMaxUrlDimension = 65535;

// Parses the signed part of a request path. Failure is Code::kBadRequest naming the problem.
// The parser has fixed ceilings for what it can represent (sizes, blur radius 150, 15x15
// convolutions, 16 watermarks); the operator's tighter limits are SpecLimits.
Result<ThumbnailSpec> parse_spec(std::string_view options_and_image);

// Code::kBadRequest naming the first filter over a limit (SpecLimits, the configuration keys
// under `limits.`); Ok when none is.
Status check_limits(const ThumbnailSpec& spec, const SpecLimits& limits);

}  // namespace thimble::transform
