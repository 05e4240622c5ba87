// trim_box(): the part of an image left after removing a uniform border, as Thumbor's trim does:
// every pixel whose colour is farther than the tolerance (Euclidean RGB distance) from the
// reference corner's counts as content; the box is the smallest rectangle holding all of it.
#pragma once

#include <optional>
#include <string>

#include "transform/plan.h"
#include "transform/spec.h"

namespace cv {
class Mat;
}

namespace thimble::transform {

// nullopt when nothing differs from the corner (trimming would leave no image): Thumbor then
// ignores the trim.
std::optional<Rect> trim_box(const cv::Mat& image, const Trim& trim);

// The spec with its manual crop moved into the trimmed image's coordinates (Thumbor subtracts
// the trim offset from the crop).
ThumbnailSpec shift_crop(ThumbnailSpec spec, const Rect& trimmed);

}  // namespace thimble::transform
