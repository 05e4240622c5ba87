// transform/filters: Thumbor's pixel filters, parsed strictly and measured on known pixels.
#include <doctest/doctest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "transform/filters.h"
#include "transform/spec.h"

using namespace thimble;
using namespace thimble::transform;

namespace {

std::vector<PixelFilter> filters_of(const std::string& list) {
  auto spec = parse_spec("filters:" + list + "/a.jpg");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  return spec->filters;
}

// Applies a filter list to a copy of `image`.
cv::Mat filtered(const cv::Mat& image, const std::string& list) {
  cv::Mat out = image.clone();
  apply_pixel_filters(out, filters_of(list));
  return out;
}

// A 4x4 image of one colour, given as R, G, B (stored BGR).
cv::Mat solid(int r, int g, int b, int channels = 3) {
  return cv::Mat(4, 4, CV_8UC(channels), cv::Scalar(b, g, r, 255));
}

cv::Vec3b rgb_at(const cv::Mat& m, int y = 0, int x = 0) {
  cv::Vec3b bgr = m.channels() == 3 ? m.at<cv::Vec3b>(y, x)
                                    : cv::Vec3b(m.at<cv::Vec4b>(y, x)[0], m.at<cv::Vec4b>(y, x)[1],
                                                m.at<cv::Vec4b>(y, x)[2]);
  return {bgr[2], bgr[1], bgr[0]};
}

}  // namespace

TEST_CASE("pixel filters parse Thumbor's argument syntax into a canonical form") {
  struct Row {
    const char* url_filters;
    const char* canonical;
  };
  const Row rows[] = {
      {"brightness(40)", "filters:brightness(40)"},
      {"brightness( -40 )", "filters:brightness(-40)"},
      {"contrast(-100)", "filters:contrast(-100)"},
      {"rgb(20,-20, 40)", "filters:rgb(20,-20,40)"},
      {"saturation(1.50)", "filters:saturation(1.5)"},
      {"saturation(.5)", "filters:saturation(0.5)"},
      {"grayscale()", "filters:grayscale()"},
      {"equalize()", "filters:equalize()"},
      {"blur(7)", "filters:blur(7,7)"},
      {"blur(4,2)", "filters:blur(4,2)"},
      {"blur(4,0)", "filters:blur(4,4)"},
      {"convolution(1;2;1;2;4;2;1;2;1,3,true)", "filters:convolution(1;2;1;2;4;2;1;2;1,3,true)"},
      {"convolution(-1;0;1,3)", "filters:convolution(-1;0;1,3,true)"},
      {"noise(20)", "filters:noise(20)"},
      {"rotate(90)", "filters:rotate(90)"},
      {"rotate(-90)", "filters:rotate(270)"},
      {"rotate(720)", "filters:rotate(0)"},
      {"colorize(10,20,30,'FF0000')", "filters:colorize(10,20,30,ff0000)"},
      {"proportion(0.5)", "filters:proportion(0.5)"},
      {"max_age(120):quality(70)", "filters:quality(70):max_age(120)"},
      {"strip_icc():strip_exif():quality(70)", "filters:quality(70)"},
      {"grayscale():brightness(10)", "filters:grayscale():brightness(10)"},
  };
  for (const auto& row : rows) {
    std::string filters(row.url_filters);
    CAPTURE(filters);
    auto spec = parse_spec("filters:" + filters + "/a.jpg");
    REQUIRE_MESSAGE(spec.ok(), spec.status().message());
    CHECK(spec->canonical() == row.canonical);
  }
}

TEST_CASE("filter arguments out of range or malformed are 400s naming the filter") {
  const char* const rows[] = {
      "brightness(101)",      "brightness()",          "brightness(1.5)",   "brightness(a)",
      "contrast(-101)",       "rgb(1,2)",              "rgb(1,2,3,4)",      "rgb(1,,3)",
      "saturation(11)",       "saturation(1e3)",       "saturation(nan)",   "grayscale(1)",
      "equalize(x)",          "blur(151)",             "blur(-1)",          "blur(2,-1)",
      "blur()",               "convolution(1;2,2)",    "convolution(1;2;3,2)",
      "convolution(1;2;3,3,maybe)",                    "convolution(1;x;3,3)",
      "convolution(1;2;3,0)", "noise(101)",            "rotate(45)",        "rotate()",
      "colorize(10,20,30)",   "colorize(10,20,300,ff0000)",                 "colorize(1,2,3,red)",
      "proportion(0)",        "proportion(2)",         "max_age(-1)",       "max_age(1):max_age(2)",
      "strip_icc(1)",
  };
  for (const char* row : rows) {
    std::string filters(row);
    CAPTURE(filters);
    auto spec = parse_spec("filters:" + filters + "/a.jpg");
    REQUIRE_FALSE(spec.ok());
    CHECK(spec.status().code() == Code::kBadRequest);
    std::string name = filters.substr(0, filters.find('('));
    CHECK(spec.status().message().find(name) != std::string::npos);
  }
  // A 15x15 kernel is the largest accepted.
  std::string big;
  for (int i = 0; i < 17 * 17; ++i) big += (i ? ";" : "") + std::string("1");
  CHECK_FALSE(parse_spec("filters:convolution(" + big + ",17)/a.jpg").ok());
}

TEST_CASE("brightness, contrast and rgb follow Thumbor's integer arithmetic") {
  CHECK(rgb_at(filtered(solid(100, 100, 100), "brightness(40)")) == cv::Vec3b(202, 202, 202));
  CHECK(rgb_at(filtered(solid(100, 100, 100), "brightness(-100)")) == cv::Vec3b(0, 0, 0));
  // contrast(50): factor 150*150/100 = 225; 150 → 225*22/100 + 128 = 177; 200 → 290 → 255.
  CHECK(rgb_at(filtered(solid(150, 200, 128), "contrast(50)")) == cv::Vec3b(177, 255, 128));
  CHECK(rgb_at(filtered(solid(100, 100, 100), "rgb(20,-20,40)")) == cv::Vec3b(151, 49, 202));
}

TEST_CASE("saturation 0 turns a colour into its perceived grey; grayscale keeps alpha") {
  // sqrt(200²·0.299 + 100²·0.587 + 50²·0.114) = 134.59
  CHECK(rgb_at(filtered(solid(200, 100, 50), "saturation(0)")) == cv::Vec3b(134, 134, 134));
  CHECK(rgb_at(filtered(solid(200, 100, 50), "saturation(1)")) == cv::Vec3b(200, 100, 50));
  cv::Mat translucent = solid(200, 100, 50, 4);
  translucent.setTo(cv::Scalar(50, 100, 200, 77));
  cv::Mat grey = filtered(translucent, "grayscale()");
  REQUIRE(grey.channels() == 4);
  cv::Vec4b p = grey.at<cv::Vec4b>(1, 1);
  CHECK(p[0] == p[1]);
  CHECK(p[1] == p[2]);
  CHECK(p[3] == 77);
}

TEST_CASE("equalize stretches a narrow histogram over the full range") {
  cv::Mat ramp(16, 16, CV_8UC3);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) ramp.at<cv::Vec3b>(y, x) = cv::Vec3b::all(static_cast<uchar>(100 + (x + y) % 11));
  }
  cv::Mat out = filtered(ramp, "equalize()");
  double lowest = 0, highest = 0;
  cv::minMaxLoc(out.reshape(1), &lowest, &highest);
  CHECK(lowest < 30);
  CHECK(highest == 255);
}

TEST_CASE("blur and convolution smooth, and identity kernels change nothing") {
  cv::Mat checker(32, 32, CV_8UC3);
  for (int y = 0; y < 32; ++y) {
    for (int x = 0; x < 32; ++x) checker.at<cv::Vec3b>(y, x) = cv::Vec3b::all((x + y) % 2 ? 255 : 0);
  }
  auto stddev = [](const cv::Mat& m) {
    cv::Scalar mean, sd;
    cv::meanStdDev(m, mean, sd);
    return sd[0];
  };
  CHECK(stddev(filtered(checker, "blur(3)")) < stddev(checker) / 4);
  CHECK(cv::norm(filtered(checker, "blur(0)"), checker) == 0);
  CHECK(cv::norm(filtered(checker, "convolution(0;0;0;0;1;0;0;0;0,3,false)"), checker) == 0);
  cv::Mat box = filtered(checker, "convolution(1;1;1;1;1;1;1;1;1,3,true)");
  // Inside the image a 3x3 box over a checkerboard averages 4 or 5 whites of 9: 113 or 141.
  int centre = box.at<cv::Vec3b>(10, 10)[0];
  CHECK((centre == 113 || centre == 141));
}

TEST_CASE("noise changes pixels the same way every time") {
  cv::Mat grey = cv::Mat(40, 40, CV_8UC3, cv::Scalar::all(128));
  cv::Mat a = filtered(grey, "noise(40)");
  cv::Mat b = filtered(grey, "noise(40)");
  CHECK(cv::norm(a, b) == 0);
  CHECK(cv::norm(a, grey) > 0);
  CHECK(std::abs(cv::mean(a)[0] - 128) < 3);
  double lowest = 0, highest = 0;
  cv::minMaxLoc(a.reshape(1), &lowest, &highest);
  CHECK(lowest >= 128 - 20);
  CHECK(highest <= 128 + 19);
}

TEST_CASE("rotate turns counter-clockwise like Thumbor and proportion scales the result") {
  cv::Mat image(20, 40, CV_8UC3, cv::Scalar(0, 0, 0));
  image.at<cv::Vec3b>(0, 39) = cv::Vec3b(255, 255, 255);  // top-right corner marked
  cv::Mat turned = filtered(image, "rotate(90)");
  CHECK(turned.cols == 20);
  CHECK(turned.rows == 40);
  CHECK(turned.at<cv::Vec3b>(0, 0)[0] == 255);  // counter-clockwise: top-right → top-left
  CHECK(filtered(image, "rotate(180)").at<cv::Vec3b>(19, 0)[0] == 255);
  cv::Mat half = filtered(image, "proportion(0.5)");
  CHECK(half.size() == cv::Size(20, 10));
}

TEST_CASE("colorize blends each channel towards the colour by its percentage") {
  CHECK(rgb_at(filtered(solid(100, 100, 100), "colorize(100,0,50,ff00c8)")) ==
        cv::Vec3b(255, 100, 150));
}

TEST_CASE("filters of one phase run from the last in the URL to the first, as in Thumbor") {
  // grayscale() runs first, then rgb() tints the grey: red stays above green.
  cv::Vec3b tinted = rgb_at(filtered(solid(90, 90, 90), "rgb(50,0,0):grayscale()"));
  CHECK(tinted[0] > tinted[1] + 100);
  // The other way round, the tint is greyed out.
  cv::Vec3b grey = rgb_at(filtered(solid(90, 90, 90), "grayscale():rgb(50,0,0)"));
  CHECK(grey[0] == grey[1]);
}
