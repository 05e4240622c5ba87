// resize_image(): the one resize Thimble uses everywhere (the main resize, proportion()):
// area averaging when shrinking, bicubic when enlarging, and colour premultiplied by alpha when
// the image has transparency, so transparent pixels do not bleed dark fringes into opaque ones.
#pragma once

#include <opencv2/core.hpp>

namespace thimble::transform {

void resize_image(const cv::Mat& source, cv::Mat& result, cv::Size size);

// Area averaging of an 8- or 16-bit image (any channel count) down to `size`, as cv::INTER_AREA
// averages (within one level), in fixed point: OpenCV's own is fast for whole ratios and takes it
// then, but for others (1800 px to 1280) it runs a general floating-point path two to three times
// slower than this one. Ratios over 32 on an axis (no shrink on load before them) stay OpenCV's.
void area_resize(const cv::Mat& source, cv::Mat& result, cv::Size size);

// Whether a BGRA image has at least one pixel that is not fully opaque.
bool has_translucency(const cv::Mat& image);

// The smallest alpha value of a BGRA `image`; 255 for an image without alpha.
int lowest_alpha(const cv::Mat& image);

}  // namespace thimble::transform
