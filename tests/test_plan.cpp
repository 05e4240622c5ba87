// transform/plan: Thumbor 7's geometry, as a table of requests on 1920x1280 and 1280x1920 sources.
#include <doctest/doctest.h>

#include <ostream>

#include "transform/plan.h"

using namespace thimble;
using namespace thimble::transform;

namespace thimble::transform {
std::ostream& operator<<(std::ostream& os, const Size& s) {
  return os << s.width << "x" << s.height;
}
std::ostream& operator<<(std::ostream& os, const Rect& r) {
  return os << "(" << r.x << "," << r.y << " " << r.width << "x" << r.height << ")";
}
}  // namespace thimble::transform

namespace {
Plan plan_for(const std::string& options, Size source, int max_output = 6000) {
  auto spec = parse_spec(options + "/image.jpg");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  auto plan = make_plan(*spec, source, max_output);
  REQUIRE_MESSAGE(plan.ok(), plan.status().message());
  return *plan;
}
struct GeometryRow {
  const char* options;
  Rect region;
  Size target;
};

void check_geometry(std::initializer_list<GeometryRow> rows, Size source) {
  for (const auto& row : rows) {
    std::string options(row.options);
    CAPTURE(options);
    Plan plan = plan_for(row.options, source);
    CHECK(plan.region == row.region);
    CHECK(plan.target == row.target);
  }
}

}  // namespace

TEST_CASE("geometry matches Thumbor on a 1920x1280 landscape source") {
  check_geometry(
      {
          // SPEC.md §1 examples.
          {"300x300", {320, 0, 1280, 1280}, {300, 300}},
          {"fit-in/3000x3000", {0, 0, 1920, 1280}, {1920, 1280}},
          {"full-fit-in/300x300", {0, 0, 1920, 1280}, {450, 300}},
          // Same aspect ratio: resize only.
          {"300x200", {0, 0, 1920, 1280}, {300, 200}},
          {"fit-in/300x200", {0, 0, 1920, 1280}, {300, 200}},
          {"fit-in/300x300", {0, 0, 1920, 1280}, {300, 200}},
          {"200x0", {0, 0, 1920, 1280}, {200, 133}},
          {"0x100", {0, 0, 1920, 1280}, {150, 100}},
          {"0x0", {0, 0, 1920, 1280}, {1920, 1280}},
          {"origxorig", {0, 0, 1920, 1280}, {1920, 1280}},
          {"origx100", {0, 590, 1920, 100}, {1920, 100}},
          // Aspect crops and alignment.
          {"300x300/left/top", {0, 0, 1280, 1280}, {300, 300}},
          {"300x300/right/bottom", {640, 0, 1280, 1280}, {300, 300}},
          {"100x300", {746, 0, 427, 1280}, {100, 300}},
          {"100x300/left", {0, 0, 427, 1280}, {100, 300}},
          {"300x100/top", {0, 0, 1920, 640}, {300, 100}},
          {"300x100/bottom", {0, 640, 1920, 640}, {300, 100}},
          {"3000x3000", {320, 0, 1280, 1280}, {3000, 3000}},  // crop mode upscales
                                                              // Fit-in variants.
          {"fit-in/0x500", {0, 0, 1920, 1280}, {750, 500}},
          {"adaptive-fit-in/0x500", {0, 0, 1920, 1280}, {750, 500}},
          {"adaptive-fit-in/200x300", {0, 0, 1920, 1280}, {300, 200}},
          {"full-fit-in/300x0", {0, 0, 1920, 1280}, {300, 200}},
          {"full-fit-in/3000x3000", {0, 0, 1920, 1280}, {4500, 3000}},
          // Manual crop first, clamped, empty ones ignored.
          {"10x20:510x420/200x0", {10, 20, 500, 400}, {200, 160}},
          {"1800x1200:2500x1500", {1800, 1200, 120, 80}, {120, 80}},
          // 100/67 rounds to 1.49, not 1.50: Thumbor trims a few columns (4.5 rounds to even 4).
          {"2000x2000:2100x2100/100x0", {4, 0, 1911, 1280}, {100, 67}},
          {"0x0:960x1280/100x100", {0, 160, 960, 960}, {100, 100}},
      },
      {1920, 1280});
}

TEST_CASE("geometry matches Thumbor on a 1280x1920 portrait source") {
  check_geometry(
      {
          {"300x300", {0, 320, 1280, 1280}, {300, 300}},
          {"300x300/top", {0, 0, 1280, 1280}, {300, 300}},
          {"fit-in/300x200", {0, 0, 1280, 1920}, {133, 200}},
          {"full-fit-in/300x200", {0, 0, 1280, 1920}, {300, 450}},
          {"adaptive-fit-in/300x200", {0, 0, 1280, 1920}, {200, 300}},
          {"fit-in/2000x2000", {0, 0, 1280, 1920}, {1280, 1920}},
          {"200x0", {0, 0, 1280, 1920}, {200, 300}},
      },
      {1280, 1920});
}

TEST_CASE("flips are carried to the plan and do not change the geometry") {
  Plan plan = plan_for("-300x-300", {1920, 1280});
  CHECK(plan.flip_horizontal);
  CHECK(plan.flip_vertical);
  CHECK(plan.region == Rect{320, 0, 1280, 1280});
  Plan flips_only = plan_for("-0x-0", {1920, 1280});
  CHECK_FALSE(flips_only.resizes());
  CHECK(flips_only.flip_horizontal);
}

TEST_CASE("outputs over the dimension limit are refused before any work") {
  auto spec = parse_spec("7000x10/a.jpg");
  REQUIRE(spec.ok());
  auto plan = make_plan(*spec, {1920, 1280}, 6000);
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().code() == Code::kBadRequest);
  CHECK(plan.status().message() == "the output would be 7000x10, over the limit of 6000 per side");
  auto fit = parse_spec("fit-in/7000x7000/a.jpg");
  CHECK(make_plan(*fit, {1920, 1280}, 6000).ok());  // fit-in never upscales
}

TEST_CASE("shrink-on-load leaves at least twice the target on each axis, or halves a large one") {
  struct Row {
    Size region, target;
    int factor;
  };
  const Row rows[] = {
      {{6000, 4000}, {300, 200}, 8},   {{4000, 3000}, {300, 200}, 4},
      {{1920, 1280}, {300, 200}, 2},   {{1920, 1280}, {1280, 853}, 1},
      {{1920, 1280}, {1920, 1280}, 1}, {{4352, 2448}, {300, 169}, 4},
      {{1280, 1280}, {300, 300}, 2},   {{100, 100}, {3000, 3000}, 1},
      {{4352, 2448}, {1280, 720}, 2},  {{4352, 2448}, {2177, 720}, 1},
      {{2560, 1440}, {1280, 720}, 2},  {{2558, 1440}, {1280, 720}, 1},
  };
  for (const auto& row : rows) {
    CAPTURE(row.region.width);
    CAPTURE(row.target.width);
    CHECK(shrink_on_load(row.region, row.target) == row.factor);
  }
  // A progressive JPEG whose 1/8 scale reads only DC scans takes 1/8 once it covers the target.
  CHECK(shrink_on_load({4352, 2448}, {300, 169}, true) == 8);  // 544x306
  CHECK(shrink_on_load({4352, 2448}, {300, 300}, true) == 8);  // 306 >= 300
  CHECK(shrink_on_load({2400, 2400}, {300, 300}, true) == 8);  // exactly the target
  CHECK(shrink_on_load({2392, 2400}, {300, 300}, true) == 2);  // 299 < 300: the usual rule
  CHECK(shrink_on_load({1920, 1280}, {300, 200}, true) == 2);
}

TEST_CASE("no_upscale, stretch and upscale change the geometry as in Thumbor 7") {
  check_geometry(
      {
          // no_upscale(): the request is clamped to the source, so nothing grows.
          {"3000x3000/filters:no_upscale()", {0, 0, 1920, 1280}, {1920, 1280}},
          {"3000x100/filters:no_upscale()", {0, 590, 1920, 100}, {1920, 100}},
          // stretch(): exactly WxH, no aspect crop.
          {"300x100/filters:stretch()", {0, 0, 1920, 1280}, {300, 100}},
          // upscale(): a fit-in result smaller than the box grows to fit inside it.
          {"fit-in/3000x3000/filters:upscale()", {0, 0, 1920, 1280}, {3000, 2000}},
          {"fit-in/3000x1500/filters:upscale()", {0, 0, 1920, 1280}, {2250, 1500}},
          {"fit-in/300x200/filters:upscale()", {0, 0, 1920, 1280}, {300, 200}},
      },
      {1920, 1280});
}

TEST_CASE("the fill box is Thumbor's request after fit-in widened it") {
  struct Row {
    const char* options;
    Size box;
  };
  const Row rows[] = {
      {"fit-in/300x300", {300, 300}},
      {"full-fit-in/300x300", {450, 300}},
      {"fit-in/3000x3000", {3000, 3000}},
      {"300x0", {300, 0}},
      {"fit-in/300x0", {300, 200}},
      {"adaptive-fit-in/200x300", {300, 200}},
      {"0x0", {0, 0}},
  };
  for (const auto& row : rows) {
    std::string options(row.options);
    CAPTURE(options);
    CHECK(plan_for(row.options, {1920, 1280}).box == row.box);
  }
}

TEST_CASE("Thumbor's rounding: a floored centre of mass and half-up fit-in sizes") {
  // 1923 / 2 = 961.5 floors to 961; the crop starts at 961 - 640 = 321.
  CHECK(plan_for("300x300", {1923, 1280}).region == Rect{321, 0, 1280, 1280});
  // 500 * 5 / 1000 = 2.5 rounds up in fit-in (Thumbor 7 adds 1e-5 before rounding).
  CHECK(plan_for("fit-in/5x5", {1000, 500}).target == Size{5, 3});
}

TEST_CASE("focal() boxes decide the aspect crop, weighted by area, and are parsed strictly") {
  auto plan_with_focal = [](const std::string& options) {
    auto spec = parse_spec(options + "/a.jpg");
    REQUIRE_MESSAGE(spec.ok(), spec.status().message());
    auto plan = make_plan(*spec, {1920, 1280}, 6000, explicit_focal_points(*spec));
    REQUIRE(plan.ok());
    return *plan;
  };
  CHECK(plan_with_focal("300x300/filters:focal(100x100:200x200)").region == Rect{0, 0, 1280, 1280});
  CHECK(plan_with_focal("300x300/filters:focal(1800x600:1900x700)").region ==
        Rect{640, 0, 1280, 1280});
  // Two boxes: the big one (area 40000) outweighs the small one (area 100).
  CHECK(plan_with_focal("300x300/filters:focal(1700x600:1900x800):focal(0x0:10x10)").region.x ==
        640);
  // A box outside a manual crop is ignored: the crop's own centre decides.
  CHECK(plan_with_focal("0x0:960x1280/100x100/filters:focal(1800x600:1900x700)").region ==
        Rect{0, 160, 960, 960});
  auto spec = parse_spec("300x300/filters:focal(10x20:110x220):focal(1x1:3x3)/a.jpg");
  REQUIRE(spec.ok());
  CHECK(spec->canonical() == "300x300/filters:focal(10x20:110x220):focal(1x1:3x3)");
  for (const char* bad : {"focal()", "focal(10x20)", "focal(10x20:5x30)", "focal(axb:cxd)"}) {
    std::string filter(bad);
    CAPTURE(filter);
    auto r = parse_spec("filters:" + filter + "/a.jpg");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("focal(") != std::string::npos);
  }
}
