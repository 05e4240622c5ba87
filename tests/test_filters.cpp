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
      "brightness(101)",
      "brightness()",
      "brightness(1.5)",
      "brightness(a)",
      "contrast(-101)",
      "rgb(1,2)",
      "rgb(1,2,3,4)",
      "rgb(1,,3)",
      "saturation(11)",
      "saturation(1e3)",
      "saturation(nan)",
      "grayscale(1)",
      "equalize(x)",
      "blur(151)",
      "blur(-1)",
      "blur(2,-1)",
      "blur()",
      "convolution(1;2,2)",
      "convolution(1;2;3,2)",
      "convolution(1;2;3,3,maybe)",
      "convolution(1;x;3,3)",
      "convolution(1;2;3,0)",
      "noise(101)",
      "rotate(45)",
      "rotate()",
      "colorize(10,20,30)",
      "colorize(10,20,300,ff0000)",
      "colorize(1,2,3,red)",
      "proportion(0)",
      "proportion(2)",
      "max_age(-1)",
      "max_age(1):max_age(2)",
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

TEST_CASE("saturation 0 turns a colour into its perceived grey, and grayscale keeps alpha") {
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
    for (int x = 0; x < 16; ++x)
      ramp.at<cv::Vec3b>(y, x) = cv::Vec3b::all(static_cast<uchar>(100 + (x + y) % 11));
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
    for (int x = 0; x < 32; ++x)
      checker.at<cv::Vec3b>(y, x) = cv::Vec3b::all((x + y) % 2 ? 255 : 0);
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

TEST_CASE("colours are read as PIL reads them: CSS names, hex digits, transparent") {
  CHECK(parse_colour("white") == Colour{255, 255, 255, 255});
  CHECK(parse_colour("RebeccaPurple") == Colour{0x66, 0x33, 0x99, 255});
  CHECK(parse_colour("f00") == Colour{255, 0, 0, 255});
  CHECK(parse_colour("00ff00") == Colour{0, 255, 0, 255});
  CHECK(parse_colour("#0000ff80") == Colour{0, 0, 255, 0x80});
  CHECK(parse_colour("transparent") == Colour{0, 0, 0, 0});
  for (const char* bad : {"", "notacolour", "ff00", "gggggg", "fffffff"}) {
    CAPTURE(std::string(bad));
    CHECK_FALSE(parse_colour(bad).has_value());
  }
}

TEST_CASE("fill pads the thumbnail to the requested box, centred") {
  cv::Mat image(200, 300, CV_8UC3, cv::Scalar(0, 0, 255));  // red 300x200
  cv::Mat out = filtered(image, "fill(blue)");
  CHECK(out.size() == image.size());  // no box: nothing to pad
  std::vector<PixelFilter> fill = filters_of("fill(blue)");
  cv::Mat padded = image.clone();
  apply_pixel_filters(padded, fill, 300, 300);
  REQUIRE(padded.size() == cv::Size(300, 300));
  REQUIRE(padded.channels() == 3);  // an opaque result needs no alpha channel
  CHECK(rgb_at(padded, 10, 150) == cv::Vec3b(0, 0, 255));   // blue band above
  CHECK(rgb_at(padded, 150, 150) == cv::Vec3b(255, 0, 0));  // the image in the middle
  CHECK(rgb_at(padded, 290, 150) == cv::Vec3b(0, 0, 255));  // blue band below
  CHECK(rgb_at(padded, 50, 0) == cv::Vec3b(255, 0, 0));     // rows 50..249 hold the image

  cv::Mat see_through = image.clone();
  apply_pixel_filters(see_through, filters_of("fill(transparent)"), 300, 300);
  REQUIRE(see_through.channels() == 4);
  CHECK(see_through.at<cv::Vec4b>(10, 150)[3] == 0);
  CHECK(see_through.at<cv::Vec4b>(150, 150)[3] == 255);

  cv::Mat automatic = image.clone();
  apply_pixel_filters(automatic, filters_of("fill(auto)"), 300, 300);
  CHECK(rgb_at(automatic, 10, 150) == cv::Vec3b(255, 0, 0));  // the median colour is red

  cv::Mat blurred = image.clone();
  apply_pixel_filters(blurred, filters_of("fill(blur)"), 300, 300);
  CHECK(blurred.size() == cv::Size(300, 300));
  CHECK(rgb_at(blurred, 10, 150)[0] > 200);  // the padding is the (red) image, blurred
}

TEST_CASE("fill keeps the image's own transparency unless asked to fill it too") {
  cv::Mat image(100, 100, CV_8UC4, cv::Scalar(0, 0, 0, 0));
  image(cv::Rect(0, 0, 50, 100)).setTo(cv::Scalar(0, 255, 0, 255));  // left half opaque green
  cv::Mat kept = image.clone();
  apply_pixel_filters(kept, filters_of("fill(white)"), 100, 100);
  REQUIRE(kept.channels() == 4);
  CHECK(kept.at<cv::Vec4b>(50, 80)[3] == 0);
  cv::Mat filled = image.clone();
  apply_pixel_filters(filled, filters_of("fill(white,true)"), 100, 100);
  REQUIRE(filled.channels() == 3);
  CHECK(rgb_at(filled, 50, 80) == cv::Vec3b(255, 255, 255));
  CHECK(rgb_at(filled, 50, 20) == cv::Vec3b(0, 255, 0));
}

TEST_CASE("background_color composites transparency onto an opaque colour") {
  cv::Mat image(10, 10, CV_8UC4, cv::Scalar(0, 0, 255, 0));
  image(cv::Rect(0, 0, 5, 10)).setTo(cv::Scalar(0, 0, 255, 255));
  image(cv::Rect(5, 0, 5, 10)).setTo(cv::Scalar(0, 0, 255, 128));
  cv::Mat out = filtered(image, "background_color(0000ff)");
  REQUIRE(out.channels() == 3);
  CHECK(rgb_at(out, 5, 2) == cv::Vec3b(255, 0, 0));
  cv::Vec3b half = rgb_at(out, 5, 7);  // half red over blue
  CHECK(std::abs(half[0] - 128) <= 2);
  CHECK(std::abs(half[2] - 127) <= 2);
  CHECK(flatten_colour(filters_of("background_color(black)")) == Colour{0, 0, 0, 255});
  CHECK(flatten_colour(filters_of("fill(red)")) == Colour{255, 0, 0, 255});
  CHECK(flatten_colour(filters_of("fill(transparent)")) == Colour{255, 255, 255, 255});
  CHECK_FALSE(parse_spec("filters:background_color(transparent)/a.jpg").ok());
  CHECK_FALSE(parse_spec("filters:fill()/a.jpg").ok());
  CHECK_FALSE(parse_spec("filters:fill(white,maybe)/a.jpg").ok());
}

TEST_CASE("curve maps tones through splines that pass through their control points") {
  const std::string identity = "[(0,0),(255,255)]";
  CHECK(cv::norm(filtered(solid(10, 128, 250), "curve(" + identity + "," + identity + "," +
                                                   identity + "," + identity + ")"),
                 solid(10, 128, 250)) == 0);
  // All channels through (128, 64): a mid grey becomes 64.
  CHECK(rgb_at(filtered(solid(128, 128, 128), "curve([(0,0),(128,64),(255,255)]," + identity + "," +
                                                  identity + "," + identity + ")")) ==
        cv::Vec3b(64, 64, 64));
  // The red curve lifts red to 255; then the all-channels curve (identity) keeps it.
  CHECK(rgb_at(filtered(solid(10, 10, 10), "curve(" + identity + ",[(0,255),(255,255)]," +
                                               identity + "," + identity + ")")) ==
        cv::Vec3b(255, 10, 10));
  auto spec = parse_spec(
      "filters:curve([(0,0), (255,255)],[(0,0),(255,255)],[(0,0),(255,255)],"
      "[(0,0),(255,255)])/a.jpg");
  REQUIRE(spec.ok());
  CHECK(spec->canonical() ==
        "filters:curve([(0,0),(255,255)],[(0,0),(255,255)],"
        "[(0,0),(255,255)],[(0,0),(255,255)])");
  for (const char* bad : {"curve([(0,0),(255,255)])", "curve([(0,0)],[(0,0)],[(0,0)],[(0,0)])",
                          "curve([(9,0),(5,9)],[(0,0),(1,1)],[(0,0),(1,1)],[(0,0),(1,1)])",
                          "curve([(0,0),(300,9)],[(0,0),(1,1)],[(0,0),(1,1)],[(0,0),(1,1)])"}) {
    std::string filter(bad);
    CAPTURE(filter);
    auto r = parse_spec("filters:" + filter + "/a.jpg");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("curve(") != std::string::npos);
  }
}

TEST_CASE("round_corner paints or clears the corners outside the ellipse") {
  cv::Mat grey(60, 100, CV_8UC3, cv::Scalar::all(100));
  cv::Mat painted = filtered(grey, "round_corner(20,255,0,0)");
  CHECK(rgb_at(painted, 0, 0) == cv::Vec3b(255, 0, 0));
  CHECK(rgb_at(painted, 59, 99) == cv::Vec3b(255, 0, 0));
  CHECK(rgb_at(painted, 0, 50) == cv::Vec3b(100, 100, 100));   // the middle of an edge
  CHECK(rgb_at(painted, 30, 50) == cv::Vec3b(100, 100, 100));  // the centre
  CHECK(rgb_at(painted, 6, 6) == cv::Vec3b(100, 100, 100));    // inside the curve
  cv::Mat oval = filtered(grey, "round_corner(40|10,0,0,0)");
  CHECK(rgb_at(oval, 0, 20) == cv::Vec3b(0, 0, 0));        // far along the wide radius
  CHECK(rgb_at(oval, 12, 0) == cv::Vec3b(100, 100, 100));  // below the short one
  cv::Mat cleared = filtered(grey, "round_corner(20,0,0,0,true)");
  REQUIRE(cleared.channels() == 4);
  CHECK(cleared.at<cv::Vec4b>(0, 0)[3] == 0);
  CHECK(cleared.at<cv::Vec4b>(30, 50)[3] == 255);
  auto spec = parse_spec("filters:round_corner(20,255,255,255)/a.jpg");
  REQUIRE(spec.ok());
  CHECK(spec->canonical() == "filters:round_corner(20|20,255,255,255,false)");
  CHECK_FALSE(parse_spec("filters:round_corner(20,256,0,0)/a.jpg").ok());
  CHECK_FALSE(parse_spec("filters:round_corner(a|b,0,0,0)/a.jpg").ok());
}

TEST_CASE("sharpen raises local contrast at edges and leaves flat areas alone") {
  cv::Mat step(40, 40, CV_8UC3, cv::Scalar::all(80));
  step(cv::Rect(20, 0, 20, 40)).setTo(cv::Scalar::all(170));
  cv::Mat blurred;
  cv::GaussianBlur(step, blurred, cv::Size(5, 5), 1.2);
  auto edge_contrast = [](const cv::Mat& m) {
    return std::abs(static_cast<int>(m.at<cv::Vec3b>(20, 22)[0]) - m.at<cv::Vec3b>(20, 17)[0]);
  };
  cv::Mat sharp = filtered(blurred, "sharpen(2,1.0,true)");
  CHECK(edge_contrast(sharp) > edge_contrast(blurred) + 10);
  CHECK(std::abs(sharp.at<cv::Vec3b>(20, 2)[0] - blurred.at<cv::Vec3b>(20, 2)[0]) <= 2);
  CHECK(cv::norm(filtered(blurred, "sharpen(0,0,false)"), blurred, cv::NORM_INF) <= 1);
  auto spec = parse_spec("filters:sharpen(2,1.0,true)/a.jpg");
  REQUIRE(spec.ok());
  CHECK(spec->canonical() == "filters:sharpen(2,1,true)");
  CHECK_FALSE(parse_spec("filters:sharpen(2,1)/a.jpg").ok());
  CHECK_FALSE(parse_spec("filters:sharpen(-1,1,true)/a.jpg").ok());
}
