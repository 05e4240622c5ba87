// transform/smart: face detection, the feature fallback, and the crop they decide.
#include <doctest/doctest.h>

#include <map>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support.h"
#include "transform/pipeline.h"

using namespace thimble;
using namespace thimble::transform;

namespace {

Thumbnail render_ok(const std::string& bytes, const std::string& options,
                    const FocalPointCache& cache = {}) {
  auto spec = parse_spec(options + "/image");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  RenderRequest request;
  request.focal_cache = cache;
  auto out = render(test::as_bytes(bytes), *spec, RenderSettings{}, request);
  REQUIRE_MESSAGE(out.ok(), out.status().message());
  return std::move(out).value();
}

bool contains(const Rect& outer, int left, int top, int right, int bottom) {
  return left >= outer.x && top >= outer.y && right <= outer.x + outer.width &&
         bottom <= outer.y + outer.height;
}

// A FocalPointMemory that counts what it is asked.
class CountingMemory final : public FocalPointMemory {
 public:
  std::optional<std::vector<FocalPoint>> recall(const std::string& key) override {
    std::lock_guard lock(mutex_);
    ++recalls;
    auto it = points_.find(key);
    if (it == points_.end()) return std::nullopt;
    return it->second;
  }
  void remember(const std::string& key, const std::vector<FocalPoint>& points) override {
    std::lock_guard lock(mutex_);
    ++remembered;
    points_[key] = points;
  }
  int recalls = 0, remembered = 0;

 private:
  std::mutex mutex_;
  std::map<std::string, std::vector<FocalPoint>> points_;
};

}  // namespace

TEST_CASE("smart keeps the portrait's face inside every aspect crop") {
  const std::string portrait =
      test::read_file(test::corpus("faces/Giunchedi_Filippo_January_2015_01.jpg"));
  for (const char* options : {"100x300/smart", "60x300/smart", "300x300/smart", "300x60/smart",
                              "120x200/left/smart", "200x200/right/smart"}) {
    std::string label(options);
    CAPTURE(label);
    Thumbnail t = render_ok(portrait, options);
    REQUIRE_FALSE(t.focal_points.empty());
    bool any_face = false;
    for (const FocalPoint& p : t.focal_points) {
      if (std::string(p.origin) != "Face Detection") continue;
      any_face = true;
      CAPTURE(p.x);
      CAPTURE(p.y);
      // The face's centre always survives; for crops at least as tall as the face, all of it.
      CHECK(contains(t.region, p.x, p.y, p.x, p.y));
      if (t.region.height >= p.height && t.region.width >= p.width) {
        CHECK(contains(t.region, p.x - p.width / 2, p.y - p.height / 2, p.x + p.width / 2,
                       p.y + p.height / 2));
      }
    }
    CHECK(any_face);
  }
}

TEST_CASE("Thumbor's Haar cascade, when named, finds the portrait's face where the LBP one does") {
  const std::string portrait =
      test::read_file(test::corpus("faces/Giunchedi_Filippo_January_2015_01.jpg"));
  auto spec = parse_spec("300x100/smart/image");
  REQUIRE(spec.ok());
  RenderSettings haar;
  haar.face_cascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_alt.xml";
  auto by_haar = render(test::as_bytes(portrait), *spec, haar);
  auto by_lbp = render(test::as_bytes(portrait), *spec, RenderSettings{});
  REQUIRE(by_haar.ok());
  REQUIRE(by_lbp.ok());
  REQUIRE(by_haar->focal_points.size() == 1);
  REQUIRE(by_lbp->focal_points.size() == 1);
  const FocalPoint& h = by_haar->focal_points.front();
  const FocalPoint& l = by_lbp->focal_points.front();
  CHECK(std::string(h.origin) == "Face Detection");
  CHECK(std::string(l.origin) == "Face Detection");
  // The same face: centres within a quarter of its size, and the same crop within a few pixels.
  CHECK(std::abs(h.x - l.x) <= h.width / 4);
  CHECK(std::abs(h.y - l.y) <= h.height / 4);
  CHECK(std::abs(by_haar->region.y - by_lbp->region.y) <= 8);
}

TEST_CASE("without a face, smart falls back to corner features") {
  const std::string scenery = test::read_file(test::corpus("faces/no_face.jpg"));
  Thumbnail t = render_ok(scenery, "100x300/smart");
  REQUIRE_FALSE(t.focal_points.empty());
  for (const FocalPoint& p : t.focal_points) CHECK(std::string(p.origin) == "Feature Detection");
  CHECK(t.focal_points.size() <= 20);
  // The crop is centred on the features' mean, not on the image's centre.
  double mean_x = 0;
  for (const FocalPoint& p : t.focal_points) mean_x += p.x;
  mean_x /= static_cast<double>(t.focal_points.size());
  CHECK(std::abs(t.region.x + t.region.width / 2.0 - mean_x) <= t.region.width / 2.0 + 1);
}

TEST_CASE("focal points are detected once per original and then recalled") {
  const std::string portrait =
      test::read_file(test::corpus("faces/Giunchedi_Filippo_January_2015_01.jpg"));
  CountingMemory memory;
  FocalPointCache cache{&memory, "portrait@v1"};
  Thumbnail first = render_ok(portrait, "100x300/smart", cache);
  Thumbnail second = render_ok(portrait, "300x100/smart", cache);
  CHECK(memory.remembered == 1);
  CHECK(memory.recalls == 2);
  CHECK(second.focal_points == first.focal_points);
  // Sizes that need no detection never ask.
  render_ok(portrait, "100x300", cache);
  CHECK(memory.recalls == 2);
}

TEST_CASE("smart works on rotated photos: points are found upright") {
  const std::string rotated = test::read_file(test::corpus("exif/Landscape_6.jpg"));
  const std::string upright = test::read_file(test::corpus("exif/Landscape_1.jpg"));
  Thumbnail a = render_ok(rotated, "100x300/smart");
  Thumbnail b = render_ok(upright, "100x300/smart");
  // Same picture as shown: the chosen crops start within a few pixels of each other.
  CHECK(std::abs(a.region.x - b.region.x) <= 40);
  CHECK(a.region.width == b.region.width);
}

TEST_CASE("debug/ draws the focal points on the untransformed source") {
  const std::string portrait =
      test::read_file(test::corpus("faces/Giunchedi_Filippo_January_2015_01.jpg"));
  auto spec = parse_spec("debug/100x300/smart/filters:format(png)/image");
  REQUIRE(spec.ok());
  auto out = render(test::as_bytes(portrait), *spec, RenderSettings{});
  REQUIRE(out.ok());
  CHECK(out->size == Size{800, 533});  // no crop, no resize
  REQUIRE_FALSE(out->focal_points.empty());
  const FocalPoint face = out->focal_points.front();
  CHECK(std::string(face.origin) == "Face Detection");
  cv::Mat img = cv::imdecode(
      cv::Mat(1, static_cast<int>(out->bytes.size()), CV_8U, const_cast<char*>(out->bytes.data())),
      cv::IMREAD_COLOR);
  cv::Vec3b edge = img.at<cv::Vec3b>(face.y - face.height / 2, face.x);  // top edge of the box
  CHECK(edge == cv::Vec3b(0, 0, 255));
  // Without smart/ the alignment point is marked, at the centre.
  auto plain = render(test::as_bytes(portrait), *parse_spec("debug/filters:format(png)/image"),
                      RenderSettings{});
  REQUIRE(plain.ok());
  REQUIRE(plain->focal_points.size() == 1);
  CHECK(plain->focal_points[0].x == 400);
  CHECK(plain->focal_points[0].y == 266);
}
