#include "transform/resize.h"

#include <opencv2/imgproc.hpp>
#include <vector>

namespace thimble::transform {

bool has_translucency(const cv::Mat& image) {
  if (image.channels() != 4) return false;
  cv::Mat alpha;
  cv::extractChannel(image, alpha, 3);
  double lowest = 255;
  cv::minMaxLoc(alpha, &lowest);
  return lowest < 255;
}

void resize_image(const cv::Mat& source, cv::Mat& result, cv::Size size) {
  const bool shrinking = size.width <= source.cols && size.height <= source.rows;
  const int interpolation = shrinking ? cv::INTER_AREA : cv::INTER_CUBIC;
  if (!has_translucency(source)) {
    cv::resize(source, result, size, 0, 0, interpolation);
    return;
  }
  cv::Mat premultiplied;
  source.convertTo(premultiplied, CV_32F, 1.0 / 255.0);
  std::vector<cv::Mat> planes;
  cv::split(premultiplied, planes);
  for (int c = 0; c < 3; ++c) cv::multiply(planes[c], planes[3], planes[c]);
  cv::merge(planes, premultiplied);
  cv::Mat resized;
  cv::resize(premultiplied, resized, size, 0, 0, interpolation);
  cv::split(resized, planes);
  for (int c = 0; c < 3; ++c) cv::divide(planes[c], planes[3], planes[c]);  // 0 where alpha is 0
  cv::merge(planes, resized);
  resized.convertTo(result, CV_8U, 255.0);
}

}  // namespace thimble::transform
