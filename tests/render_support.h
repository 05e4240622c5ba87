// Rendering helpers shared by the transform tests: render an original with a URL's options,
// decode a thumbnail, compare pixels.
#pragma once

#include <doctest/doctest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "conf/base/clock.h"
#include "support.h"
#include "transform/pipeline.h"

namespace thimble::test::rendering {

using transform::RenderSettings;
using transform::Thumbnail;

inline const SystemClock real_clock;

// A deadline that is over before the work starts.
inline Deadline already_passed() {
  return Deadline(real_clock, real_clock.steady_now() - std::chrono::nanoseconds(1));
}

inline Result<Thumbnail> render_bytes(const std::string& bytes, const std::string& options,
                                      RenderSettings settings = {}) {
  auto spec = transform::parse_spec(options + "/image");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  return transform::render(test::as_bytes(bytes), *spec, settings);
}

inline Thumbnail render_ok(const std::string& bytes, const std::string& options,
                           RenderSettings settings = {}) {
  auto out = render_bytes(bytes, options, settings);
  REQUIRE_MESSAGE(out.ok(), out.status().message());
  return std::move(out).value();
}

inline cv::Mat decoded(const Thumbnail& t) {
  cv::Mat buffer(1, static_cast<int>(t.bytes.size()), CV_8U, const_cast<char*>(t.bytes.data()));
  cv::Mat img = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
  REQUIRE_FALSE(img.empty());
  return img;
}

inline double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  REQUIRE(a.size() == b.size());
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  cv::Scalar m = cv::mean(diff);
  return (m[0] + m[1] + m[2]) / 3.0;
}

inline std::string encode(const cv::Mat& img, const char* ext) {
  std::vector<std::uint8_t> out;
  REQUIRE(cv::imencode(ext, img, out));
  return {out.begin(), out.end()};
}

}  // namespace thimble::test::rendering
