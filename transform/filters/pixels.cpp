#include "transform/filters/pixels.h"

#include <opencv2/imgproc.hpp>

#include "transform/resize.h"

namespace thimble::transform::filters {

void apply_lut(cv::Mat& image, const ChannelTables& bgr) {
  cv::Mat lut(1, 256, CV_8UC(image.channels()));
  for (int v = 0; v < 256; ++v) {
    std::uint8_t* entry = lut.ptr<std::uint8_t>(0) + v * image.channels();
    for (int c = 0; c < 3; ++c)
      entry[c] = bgr[static_cast<std::size_t>(c)][static_cast<std::size_t>(v)];
    if (image.channels() == 4) entry[3] = static_cast<std::uint8_t>(v);
  }
  cv::LUT(image, lut, image);
}

void paste(cv::Mat& bottom, const cv::Mat& top, cv::Point at, bool blend) {
  cv::Rect area = cv::Rect(at, top.size()) & cv::Rect(cv::Point(0, 0), bottom.size());
  if (area.empty()) return;
  cv::Mat source = top(cv::Rect(area.tl() - at, area.size()));
  cv::Mat target = bottom(area);
  if (source.channels() == 3) {
    cv::cvtColor(source, target, cv::COLOR_BGR2BGRA);
    return;
  }
  if (!blend) {
    source.copyTo(target);
    return;
  }
  for (int y = 0; y < area.height; ++y) {
    const cv::Vec4b* s = source.ptr<cv::Vec4b>(y);
    cv::Vec4b* t = target.ptr<cv::Vec4b>(y);
    for (int x = 0; x < area.width; ++x) {
      const int a = s[x][3], below = t[x][3] * (255 - a) / 255, out = a + below;
      for (int c = 0; c < 3; ++c) {
        t[x][c] = out ? static_cast<std::uint8_t>((s[x][c] * a + t[x][c] * below) / out) : 0;
      }
      t[x][3] = static_cast<std::uint8_t>(out);
    }
  }
}

void drop_opaque_alpha(cv::Mat& image) {
  if (image.channels() != 4 || has_translucency(image)) return;
  cv::cvtColor(image, image, cv::COLOR_BGRA2BGR);
}

}  // namespace thimble::transform::filters
