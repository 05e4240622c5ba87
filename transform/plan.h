// Plan: the geometry of one thumbnail, computed once as pure integer arithmetic before any pixel
// is touched: which region of the (EXIF-oriented) source survives, the output size, and how much
// a JPEG may be shrunk while it is decoded. The numbers reproduce Thumbor 7's (SPEC.md §1),
// including its rounding, so a Thumbor URL gives Thumbor's dimensions and crop.
//
// Pure functions; thread-safe.
#pragma once

#include <optional>

#include "conf/status.h"
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
Result<Plan> make_plan(const ThumbnailSpec& spec, Size oriented_source, int max_output_dimension);

// The JPEG decode scale denominator (1, 2, 4 or 8): the largest that still leaves at least twice
// the target's pixels on each axis of `region` for the final area-averaging resize.
int shrink_on_load(Size region, Size target);

}  // namespace thimble::transform
