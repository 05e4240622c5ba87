// Pixel helpers the filter families share. Internal to transform/filters/.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <opencv2/core.hpp>

#include "transform/colour.h"

namespace thimble::transform::filters {

inline std::uint8_t clamp_byte(int v) {
  return static_cast<std::uint8_t>(std::clamp(v, 0, 255));
}

inline cv::Scalar bgra(const Colour& c) {
  return cv::Scalar(c.b, c.g, c.r, c.a);
}

// A lookup table per colour channel (B, G, R), 256 entries each.
using ChannelTables = std::array<std::array<std::uint8_t, 256>, 3>;

// Applies a per-channel lookup table to the colour channels, leaving alpha alone.
void apply_lut(cv::Mat& image, const ChannelTables& bgr);

// Runs `f(pixel)` on every pixel's first three bytes (B, G, R).
template <class F>
void for_each_colour(cv::Mat& image, F f) {
  const int channels = image.channels();
  for (int y = 0; y < image.rows; ++y) {
    std::uint8_t* p = image.ptr<std::uint8_t>(y);
    for (int x = 0; x < image.cols; ++x, p += channels) f(p);
  }
}

// Composites `top` (BGR or BGRA) onto `bottom` (BGRA) at its top-left `at`, clipped to `bottom`.
// With `blend` false, `top`'s pixels (alpha included) simply replace `bottom`'s.
void paste(cv::Mat& bottom, const cv::Mat& top, cv::Point at, bool blend);

// Drops the alpha channel when every pixel is opaque.
void drop_opaque_alpha(cv::Mat& image);

}  // namespace thimble::transform::filters
