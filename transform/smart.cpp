#include "transform/smart.h"

#include <algorithm>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "transform/decode.h"

namespace thimble::transform {
namespace {

// This thread's classifier for `path`; null when the file cannot be loaded.
cv::CascadeClassifier* classifier_for(const std::string& path) {
  thread_local std::string loaded_path;
  thread_local std::unique_ptr<cv::CascadeClassifier> classifier;
  if (path.empty()) return nullptr;
  if (path != loaded_path) {
    loaded_path = path;
    classifier = std::make_unique<cv::CascadeClassifier>();
    try {
      if (!classifier->load(path)) classifier.reset();
    } catch (const cv::Exception&) {
      classifier.reset();
    }
  }
  return classifier.get();
}

}  // namespace

cv::Mat detection_copy(const cv::Mat& stored, int orientation, Size shown, double& scale) {
  // Grey first: the reduction then touches one channel instead of three or four.
  cv::Mat grey;
  if (stored.channels() == 1) {
    grey = stored;
  } else {
    cv::cvtColor(stored, grey, stored.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  }
  const int longest = std::max(grey.cols, grey.rows);
  cv::Mat copy;
  if (longest > kDetectionSide) {
    const double f = static_cast<double>(kDetectionSide) / longest;
    cv::resize(grey, copy,
               cv::Size(std::max(1, static_cast<int>(grey.cols * f)),
                        std::max(1, static_cast<int>(grey.rows * f))),
               0, 0, cv::INTER_AREA);
  } else {
    copy = grey.data == stored.data ? grey.clone() : grey;
  }
  apply_orientation(copy, orientation);
  scale = static_cast<double>(shown.width) / copy.cols;
  return copy;
}

std::vector<FocalPoint> detect_focal_points(const cv::Mat& image, double scale,
                                            const std::string& face_cascade) {
  cv::Mat grey = image;
  if (image.channels() != 1) {
    cv::cvtColor(image, grey, image.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  }
  std::vector<FocalPoint> points;
  auto scaled = [scale](double v) { return static_cast<int>(v * scale); };

  if (cv::CascadeClassifier* faces = classifier_for(face_cascade)) {
    // Faces on a smaller copy still (the cascade's cost is proportional to its pixels).
    cv::Mat small = grey;
    double up = 1;  // detection-copy pixels per face-copy pixel
    if (const int longest = std::max(grey.cols, grey.rows); longest > kFaceSide) {
      up = static_cast<double>(longest) / kFaceSide;
      cv::resize(grey, small,
                 cv::Size(std::max(1, static_cast<int>(grey.cols / up)),
                          std::max(1, static_cast<int>(grey.rows / up))),
                 0, 0, cv::INTER_AREA);
    }
    cv::Mat equalised;
    cv::equalizeHist(small, equalised);
    const int min_side = std::max(20, std::min(small.cols, small.rows) / 15);
    std::vector<cv::Rect> found;
    faces->detectMultiScale(equalised, found, 1.2, 3, 0, cv::Size(min_side, min_side));
    for (const cv::Rect& f : found) {
      // Thumbor moves the box up by 12% of its height, so the hair is kept too.
      const double top = std::max(0.0, f.y - f.height * 0.12);
      FocalPoint p;
      p.x = scaled(up * (f.x + f.width / 2.0));
      p.y = scaled(up * (top + f.height / 2.0));
      p.width = scaled(up * f.width);
      p.height = scaled(up * f.height);
      p.weight = static_cast<double>(p.width) * p.height;
      p.origin = "Face Detection";
      points.push_back(p);
    }
  }
  if (points.empty()) {
    std::vector<cv::Point2f> corners;
    cv::goodFeaturesToTrack(grey, corners, 20, 0.04, 1.0);
    for (const cv::Point2f& c : corners) {
      FocalPoint p;
      p.x = scaled(c.x);
      p.y = scaled(c.y);
      p.origin = "Feature Detection";
      points.push_back(p);
    }
  }
  return points;
}

}  // namespace thimble::transform
