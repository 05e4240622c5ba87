// transform/meta: the meta/ JSON, from the header and the plan alone.
#include <doctest/doctest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support.h"
#include "transform/meta.h"

using namespace thimble;
using namespace thimble::transform;

namespace {
std::string describe_ok(const std::string& bytes, const std::string& options) {
  auto spec = parse_spec(options + "/image");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  CHECK(spec->meta);
  auto json = describe(test::as_bytes(bytes), *spec, RenderSettings{});
  REQUIRE_MESSAGE(json.ok(), json.status().message());
  return *json;
}
}  // namespace

TEST_CASE(
    "meta lists the source, both crops, the resize, the flips, the target and the focal point") {
  std::vector<std::uint8_t> png;
  REQUIRE(cv::imencode(".png", cv::Mat(1280, 1920, CV_8UC3, cv::Scalar::all(90)), png));
  const std::string json =
      describe_ok(std::string(png.begin(), png.end()), "meta/10x20:510x420/-200x100");
  // Manual crop 500x400, then the aspect crop inside it (relative to it), then the resize.
  CHECK(json ==
        "{\"thumbor\":{\"source\":{\"url\":\"image\",\"width\":1920,\"height\":1280,"
        "\"frameCount\":1,\"format\":\"png\"},\"operations\":["
        "{\"type\":\"crop\",\"left\":10,\"top\":20,\"right\":510,\"bottom\":420},"
        "{\"type\":\"crop\",\"left\":0,\"top\":75,\"right\":500,\"bottom\":325},"
        "{\"type\":\"resize\",\"width\":200,\"height\":100},{\"type\":\"flip_horizontally\"}],"
        "\"target\":{\"width\":200,\"height\":100,\"format\":\"png\"},"
        "\"focal_points\":[{\"x\":250,\"y\":200,\"z\":1,\"height\":1,\"width\":1,"
        "\"origin\":\"alignment\"}]}}");
}

TEST_CASE("meta reports sizes as shown, after EXIF orientation, and sizes changed by filters") {
  const std::string rotated = test::read_file(test::corpus("exif/Landscape_6.jpg"));
  const std::string json = describe_ok(rotated, "meta/fit-in/300x300");
  CHECK(json.find("\"width\":1800,\"height\":1200") != std::string::npos);
  CHECK(json.find("{\"type\":\"resize\",\"width\":300,\"height\":200}") != std::string::npos);
  CHECK(json.find("\"target\":{\"width\":300,\"height\":200,\"format\":\"jpeg\"}") !=
        std::string::npos);
  const std::string padded =
      describe_ok(rotated, "meta/fit-in/300x300/filters:fill(white):rotate(90)");
  CHECK(padded.find("\"target\":{\"width\":300,\"height\":300") != std::string::npos);
  const std::string turned =
      describe_ok(rotated, "meta/fit-in/300x300/filters:rotate(90):format(webp)");
  CHECK(turned.find("\"target\":{\"width\":200,\"height\":300,\"format\":\"webp\"}") !=
        std::string::npos);
  // No operation at all when nothing changes.
  CHECK(describe_ok(rotated, "meta").find("\"operations\":[]") != std::string::npos);
}

TEST_CASE("meta refuses what render would refuse") {
  auto spec = parse_spec("meta/300x300/image");
  REQUIRE(spec.ok());
  auto junk = describe(test::as_bytes(std::string("not an image")), *spec, RenderSettings{});
  REQUIRE_FALSE(junk.ok());
  CHECK(junk.status().code() == Code::kUnsupportedMedia);
  RenderSettings small;
  small.max_source_pixels = 1000;
  auto big =
      describe(test::as_bytes(test::read_file(test::corpus("exif/Landscape_1.jpg"))), *spec, small);
  REQUIRE_FALSE(big.ok());
  CHECK(big.status().code() == Code::kTooLarge);
}

TEST_CASE("meta with trim decodes to find the border and reports it as the first crop") {
  cv::Mat canvas(80, 120, CV_8UC3, cv::Scalar::all(255));
  canvas(cv::Rect(25, 15, 60, 40)).setTo(cv::Scalar(0, 0, 255));
  std::vector<std::uint8_t> png;
  REQUIRE(cv::imencode(".png", canvas, png));
  const std::string json = describe_ok(std::string(png.begin(), png.end()), "meta/trim/30x20");
  CHECK(json.find("\"width\":120,\"height\":80") != std::string::npos);
  CHECK(json.find("\"operations\":[{\"type\":\"crop\",\"left\":25,\"top\":15,\"right\":85,"
                  "\"bottom\":55},{\"type\":\"resize\",\"width\":30,\"height\":20}]") !=
        std::string::npos);
}
