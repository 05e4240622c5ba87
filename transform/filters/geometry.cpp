// Geometry filters: rotate, proportion, round_corner.
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "transform/filters/family.h"
#include "transform/filters/pixels.h"
#include "transform/resize.h"

namespace thimble::transform::filters {
namespace {

// rotate(degrees): 0, 90, 180, 270 (counter-clockwise, as Thumbor).
struct Rotate final : FilterEffect {
  explicit Rotate(int d) : degrees(d) {}
  int degrees;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    if (degrees == 0) return;
    cv::Mat rotated;
    cv::rotate(image, rotated,
               degrees == 90    ? cv::ROTATE_90_COUNTERCLOCKWISE
               : degrees == 180 ? cv::ROTATE_180
                                : cv::ROTATE_90_CLOCKWISE);
    image = rotated;
  }
  std::pair<int, int> size_after(std::pair<int, int> size, std::pair<int, int>) const override {
    if (degrees % 180) std::swap(size.first, size.second);
    return size;
  }
};

Result<PixelFilter> parse_rotate(const Call& call) {
  auto v = call.values.size() == 1 ? integer_argument(call.values[0]) : std::nullopt;
  if (!v || *v % 90 != 0) return call.fail("an angle in degrees that is a multiple of 90");
  const int degrees = ((*v % 360) + 360) % 360;
  return call.made(Rotate(degrees), std::to_string(degrees));
}

// proportion(factor): resizes the result by the factor, (0, 1].
struct Proportion final : FilterEffect {
  explicit Proportion(double f) : factor(f) {}
  double factor;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    const int width = static_cast<int>(image.cols * factor);
    const int height = static_cast<int>(image.rows * factor);
    if (width < 1 || height < 1) return;
    cv::Mat resized;
    resize_image(image, resized, cv::Size(width, height));
    image = resized;
  }
  std::pair<int, int> size_after(std::pair<int, int> size, std::pair<int, int>) const override {
    const int w = static_cast<int>(size.first * factor);
    const int h = static_cast<int>(size.second * factor);
    if (w >= 1 && h >= 1) return {w, h};
    return size;
  }
};

Result<PixelFilter> parse_proportion(const Call& call) {
  auto v = call.values.size() == 1 ? decimal_argument(call.values[0]) : std::nullopt;
  if (!v || *v <= 0 || *v > 1) return call.fail("a factor greater than 0 and at most 1");
  return call.made(Proportion(*v), decimal_text(*v));
}

// round_corner(a|b, r, g, b[, transparent]): elliptical corners of radii a (across) and b (down),
// painted in the colour, or made transparent.
struct RoundCorner final : FilterEffect {
  RoundCorner(int a, int b, std::array<std::uint8_t, 3> colour, bool clear)
      : a_radius(a), b_radius(b), rgb(colour), transparent(clear) {}
  int a_radius, b_radius;
  std::array<std::uint8_t, 3> rgb;
  bool transparent = false;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    const double a = std::min(a_radius, image.cols / 2), b = std::min(b_radius, image.rows / 2);
    if (a < 1 || b < 1) return;
    if (transparent && image.channels() == 3) cv::cvtColor(image, image, cv::COLOR_BGR2BGRA);
    const int channels = image.channels();
    // Coverage of each corner pixel by the outside of the ellipse, from 4x4 samples.
    auto outside = [&](double px, double py) {  // px, py from the corner, in pixels
      int hits = 0;
      for (int sy = 0; sy < 4; ++sy) {
        for (int sx = 0; sx < 4; ++sx) {
          const double dx = (a - (px + (sx + 0.5) / 4)) / a, dy = (b - (py + (sy + 0.5) / 4)) / b;
          if (dx > 0 && dy > 0 && dx * dx + dy * dy > 1) ++hits;
        }
      }
      return hits / 16.0;
    };
    for (int py = 0; py < static_cast<int>(b); ++py) {
      for (int px = 0; px < static_cast<int>(a); ++px) {
        const double cover = outside(px, py);
        if (cover == 0) continue;
        for (auto [x, y] : {std::pair{px, py}, std::pair{image.cols - 1 - px, py},
                            std::pair{px, image.rows - 1 - py},
                            std::pair{image.cols - 1 - px, image.rows - 1 - py}}) {
          std::uint8_t* p = image.ptr<std::uint8_t>(y) + x * channels;
          if (transparent) {
            p[3] = static_cast<std::uint8_t>(std::lround(p[3] * (1 - cover)));
          } else {
            for (int c = 0; c < 3; ++c) {
              const int paint = rgb[static_cast<std::size_t>(2 - c)];
              p[c] = static_cast<std::uint8_t>(std::lround(p[c] * (1 - cover) + paint * cover));
            }
          }
        }
      }
    }
  }
  Status within(const SpecLimits& limits, const std::string& canonical) const override {
    if (std::max(a_radius, b_radius) > limits.max_round_corner_radius) {
      return over_limit(canonical + ": the corner radius", limits.max_round_corner_radius);
    }
    return Status::Ok();
  }
};

Result<PixelFilter> parse_round_corner(const Call& call) {
  const auto& a = call.values;
  const char* expected =
      "radius or a|b radii (0 to 10000), red, green, blue (0 to 255) and an optional "
      "true/false for transparent corners";
  if (a.size() < 4 || a.size() > 5) return call.fail(expected);
  std::string_view radii = a[0];
  std::size_t bar = radii.find('|');
  auto ra = integer_argument(radii.substr(0, bar));
  auto rb = bar == std::string_view::npos ? ra : integer_argument(radii.substr(bar + 1));
  auto rgb = integer_arguments({a[1], a[2], a[3]}, 3, 0, 255);
  auto transparent = a.size() == 5 ? boolean_argument(a[4]) : std::optional<bool>(false);
  if (!ra || !rb || *ra < 0 || *rb < 0 || *ra > 10000 || *rb > 10000 || !rgb || !transparent) {
    return call.fail(expected);
  }
  RoundCorner corner(*ra, *rb,
                     {static_cast<std::uint8_t>((*rgb)[0]), static_cast<std::uint8_t>((*rgb)[1]),
                      static_cast<std::uint8_t>((*rgb)[2])},
                     *transparent);
  return call.made(corner, std::to_string(*ra) + "|" + std::to_string(*rb) + "," +
                               std::to_string((*rgb)[0]) + "," + std::to_string((*rgb)[1]) + "," +
                               std::to_string((*rgb)[2]) + "," + (*transparent ? "true" : "false"));
}

constexpr Entry kGeometryFilters[] = {
    {"rotate", parse_rotate},
    {"proportion", parse_proportion},
    {"round_corner", parse_round_corner},
};

}  // namespace

std::span<const Entry> geometry_filters() {
  return kGeometryFilters;
}

}  // namespace thimble::transform::filters
