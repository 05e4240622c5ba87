#include "transform/trim.h"

#include <algorithm>
#include <opencv2/core.hpp>

namespace thimble::transform {

std::optional<Rect> trim_box(const cv::Mat& image, const Trim& trim) {
  if (image.empty()) return std::nullopt;
  const int channels = image.channels();
  const cv::Point corner = trim.corner == Trim::Corner::kTopLeft
                               ? cv::Point(0, 0)
                               : cv::Point(image.cols - 1, image.rows - 1);
  const std::uint8_t* reference = image.ptr<std::uint8_t>(corner.y) + corner.x * channels;
  const int limit = trim.tolerance * trim.tolerance;
  int left = image.cols, top = image.rows, right = -1, bottom = -1;
  for (int y = 0; y < image.rows; ++y) {
    const std::uint8_t* p = image.ptr<std::uint8_t>(y);
    for (int x = 0; x < image.cols; ++x, p += channels) {
      int distance = 0;
      for (int c = 0; c < 3; ++c) distance += (p[c] - reference[c]) * (p[c] - reference[c]);
      if (distance <= limit) continue;
      left = std::min(left, x);
      right = std::max(right, x);
      top = std::min(top, y);
      bottom = std::max(bottom, y);
    }
  }
  if (right < left || bottom < top) return std::nullopt;
  return Rect{left, top, right - left + 1, bottom - top + 1};
}

ThumbnailSpec shift_crop(ThumbnailSpec spec, const Rect& trimmed) {
  if (spec.crop) {
    spec.crop->left -= trimmed.x;
    spec.crop->right -= trimmed.x;
    spec.crop->top -= trimmed.y;
    spec.crop->bottom -= trimmed.y;
  }
  return spec;
}

}  // namespace thimble::transform
