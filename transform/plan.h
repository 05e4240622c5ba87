// Plan: the geometry of one thumbnail, computed once as pure integer arithmetic before any pixel
// is touched: which region of the (EXIF-oriented) source survives, the output size, and how much
// a JPEG may be shrunk while it is decoded. The numbers reproduce Thumbor 7's (SPEC.md §1),
// including its rounding, so a Thumbor URL gives Thumbor's dimensions and crop.
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <vector>

#include "conf/base/status.h"
#include "transform/sniff.h"
#include "transform/spec.h"

namespace thimble::transform {

struct Size {
  int width = 0;
  int height = 0;
  bool operator==(const Size&) const = default;
};

struct Rect {
  int x = 0, y = 0, width = 0, height = 0;
  bool operator==(const Rect&) const = default;
  Size size() const { return {width, height}; }
};

// A point of interest for the aspect crop, in the coordinates of the image as shown: a detected
// face or feature, or the alignment point. The crop is centred on the weighted centre of them.
struct FocalPoint {
  int x = 0, y = 0;
  int width = 1, height = 1;
  double weight = 1;
  const char* origin = "alignment";  // "alignment", "Face Detection" or "Feature Detection"
  bool operator==(const FocalPoint&) const = default;
};

struct Plan {
  Size source;  // the source as shown, i.e. after EXIF orientation
  Rect region;  // the part of `source` that becomes the output (manual crop, then aspect crop)
  std::optional<Rect> manual_crop;  // the effective `AxB:CxD` crop, clamped; none if ignored
  Size target;  // output size before flips; equal to region.size() when nothing is resized
  // The box Thumbor's fill() pads to (its request width and height after the transform);
  // 0 on a side means "the image's own side".
  Size box;
  bool flip_horizontal = false;
  bool flip_vertical = false;

  bool resizes() const { return target != region.size(); }
};

// Failure: Code::kBadRequest when the output would exceed `max_output_dimension` on a side.
// `focal_points` (smart detection), when given, replace the alignment point; those outside a
// manual crop are dropped and the others moved into its coordinates, as Thumbor does.
Result<Plan> make_plan(const ThumbnailSpec& spec, Size oriented_source, int max_output_dimension,
                       const std::vector<FocalPoint>& focal_points = {});

// The focal() boxes of a spec as focal points (centre of the box, weighing its area).
std::vector<FocalPoint> explicit_focal_points(const ThumbnailSpec& spec);

// The focal points that decide the crop of `region` (the manual crop, or the whole image):
// the given ones that fall inside it, shifted into it, else the alignment point.
std::vector<FocalPoint> effective_focal_points(const ThumbnailSpec& spec, Rect region,
                                               const std::vector<FocalPoint>& focal_points);

// The JPEG decode scale denominator (1, 2, 4 or 8): the largest that still leaves at least twice
// the target's pixels on each axis of `region` for the final area-averaging resize (a scaled
// inverse DCT is not an area filter; the margin keeps its artefacts out of the thumbnail), else
// 2 when half the region still covers the target (the half-size IDCT is close to a 2x2 average,
// and large outputs are where the decode and resize cost most). With
// `dc_eighth` (a progressive JPEG whose 1/8 decode reads only its DC scans, several times faster
// than any other scale) 1/8 is taken as soon as it still covers the target: DC pixels are exact
// 8x8 block averages, the very area filter the resize applies.
int shrink_on_load(Size region, Size target, bool dc_eighth = false);

// The shrink-on-load of `source`'s format for cutting `region` (of the image as shown) down to
// `target`: the JPEG decode scale above, and the same factor for a still WebP (decoded
// by libwebp's rescaler). For a HEIF file: heif_thumbnail_shrink() when its thumbnail item still
// leaves twice the target on each axis of the region; else, without alpha, the same factor again
// (its planes are reduced by area as they are converted), unless that would take the thumbnail;
// 1 otherwise.
int shrink_on_load(const ImageInfo& source, Size region, Size target);

// Whether decode_image() reduces `source` as it decodes it (decode.h): a JPEG, a still WebP, a
// HEIF file without alpha.
bool shrinks_on_decode(const ImageInfo& source);

// Whether a HEIF file decoded at `shrink` is decoded from its thumbnail item: `shrink` is above 1
// and the thumbnail is at least 1/shrink of the image.
bool decodes_heif_thumbnail(const ImageInfo& info, int shrink);

// The smallest shrink at which the thumbnail item is decoded (1 when there is none).
int heif_thumbnail_shrink(const ImageInfo& info);

}  // namespace thimble::transform
