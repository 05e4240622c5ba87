#include "transform/resize.h"

#include <algorithm>
#include <cstdint>
#include <opencv2/imgproc.hpp>

namespace thimble::transform {

int lowest_alpha(const cv::Mat& image) {
  if (image.channels() != 4) return 255;
  cv::Mat alpha;
  cv::extractChannel(image, alpha, 3);
  double lowest = 255;
  cv::minMaxLoc(alpha, &lowest);
  return static_cast<int>(lowest);
}

bool has_translucency(const cv::Mat& image) {
  return lowest_alpha(image) < 255;
}

void resize_image(const cv::Mat& source, cv::Mat& result, cv::Size size) {
  const bool shrinking = size.width <= source.cols && size.height <= source.rows;
  const int interpolation = shrinking ? cv::INTER_AREA : cv::INTER_CUBIC;
  if (!has_translucency(source)) {
    cv::resize(source, result, size, 0, 0, interpolation);
    return;
  }
  // Premultiplied in 16 bits, exactly: colour * alpha and alpha * 255 both fit (at most 65025),
  // so the resize (which OpenCV vectorises for 16-bit) averages without losing the colours of
  // nearly transparent pixels. Only the small result is divided back.
  cv::Mat premultiplied(source.size(), CV_16UC4);
  for (int y = 0; y < source.rows; ++y) {
    const std::uint8_t* in = source.ptr<std::uint8_t>(y);
    std::uint16_t* out = premultiplied.ptr<std::uint16_t>(y);
    for (int x = 0; x < 4 * source.cols; x += 4) {
      const unsigned alpha = in[x + 3];
      out[x] = static_cast<std::uint16_t>(in[x] * alpha);
      out[x + 1] = static_cast<std::uint16_t>(in[x + 1] * alpha);
      out[x + 2] = static_cast<std::uint16_t>(in[x + 2] * alpha);
      out[x + 3] = static_cast<std::uint16_t>(alpha * 255);
    }
  }
  cv::Mat resized;
  cv::resize(premultiplied, resized, size, 0, 0, interpolation);
  result.create(size, CV_8UC4);
  for (int y = 0; y < size.height; ++y) {
    const std::uint16_t* in = resized.ptr<std::uint16_t>(y);
    std::uint8_t* out = result.ptr<std::uint8_t>(y);
    for (int x = 0; x < 4 * size.width; x += 4) {
      const unsigned alpha = in[x + 3];  // alpha * 255
      for (int c = 0; c < 3; ++c) {
        // colour = C / A * 255, rounded; 0 where alpha is 0; capped where a cubic overshoots.
        out[x + c] = alpha == 0 ? 0
                                : static_cast<std::uint8_t>(std::min<unsigned>(
                                      255, (in[x + c] * 255u + alpha / 2) / alpha));
      }
      out[x + 3] = static_cast<std::uint8_t>((alpha + 127) / 255);
    }
  }
}

}  // namespace thimble::transform
