// Colour filters: brightness, contrast, rgb, saturation, grayscale, equalize, colorize, curve.
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "transform/filters/family.h"
#include "transform/filters/pixels.h"

namespace thimble::transform::filters {
namespace {

// brightness(amount): -100..100, % of 255 added.
struct Brightness final : FilterEffect {
  explicit Brightness(int a) : amount(a) {}
  int amount;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    const int delta = 255 * amount / 100;
    ChannelTables lut{};
    for (int v = 0; v < 256; ++v) {
      for (auto& channel : lut) channel[static_cast<std::size_t>(v)] = clamp_byte(v + delta);
    }
    apply_lut(image, lut);
  }
};

// contrast(amount): -100..100.
struct Contrast final : FilterEffect {
  explicit Contrast(int a) : amount(a) {}
  int amount;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    const int factor = (amount + 100) * (amount + 100) / 100;
    ChannelTables lut{};
    for (int v = 0; v < 256; ++v) {
      for (auto& channel : lut) {
        channel[static_cast<std::size_t>(v)] = clamp_byte(factor * (v - 128) / 100 + 128);
      }
    }
    apply_lut(image, lut);
  }
};

Result<PixelFilter> parse_brightness_or_contrast(const Call& call) {
  auto v = integer_arguments(call.values, 1, -100, 100);
  if (!v) return call.fail("a whole number from -100 to 100");
  const std::string text = std::to_string((*v)[0]);
  if (call.name == "brightness") return call.made(Brightness((*v)[0]), text);
  return call.made(Contrast((*v)[0]), text);
}

// rgb(r, g, b): -100..100 each, % of 255 added.
struct Rgb final : FilterEffect {
  Rgb(int r, int g, int b) : red(r), green(g), blue(b) {}
  int red, green, blue;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    const int delta[3] = {255 * blue / 100, 255 * green / 100, 255 * red / 100};  // BGR
    ChannelTables lut{};
    for (int v = 0; v < 256; ++v) {
      for (std::size_t c = 0; c < 3; ++c)
        lut[c][static_cast<std::size_t>(v)] = clamp_byte(v + delta[c]);
    }
    apply_lut(image, lut);
  }
};

Result<PixelFilter> parse_rgb(const Call& call) {
  auto v = integer_arguments(call.values, 3, -100, 100);
  if (!v) return call.fail("three whole numbers from -100 to 100");
  return call.made(
      Rgb((*v)[0], (*v)[1], (*v)[2]),
      std::to_string((*v)[0]) + "," + std::to_string((*v)[1]) + "," + std::to_string((*v)[2]));
}

// saturation(change): 0 = grey, 1 = unchanged, >1 = more.
struct Saturation final : FilterEffect {
  explicit Saturation(double c) : change(c) {}
  double change;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    const float factor = static_cast<float>(change);
    for_each_colour(image, [factor](std::uint8_t* p) {
      const float b = p[0], g = p[1], r = p[2];
      const float grey = std::sqrt(r * r * 0.299f + g * g * 0.587f + b * b * 0.114f);
      for (int c = 0; c < 3; ++c)
        p[c] = clamp_byte(static_cast<int>(grey + (p[c] - grey) * factor));
    });
  }
};

Result<PixelFilter> parse_saturation(const Call& call) {
  auto v = call.values.size() == 1 ? decimal_argument(call.values[0]) : std::nullopt;
  if (!v || *v < -10 || *v > 10) return call.fail("a decimal number from -10 to 10");
  return call.made(Saturation(*v), decimal_text(*v));
}

struct Grayscale final : FilterEffect {
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    cv::Mat grey;
    cv::cvtColor(image, grey, image.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
    std::vector<cv::Mat> planes{grey, grey, grey};
    if (image.channels() == 4) {
      planes.emplace_back();
      cv::extractChannel(image, planes.back(), 3);
    }
    cv::merge(planes, image);
  }
};

struct Equalize final : FilterEffect {
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    std::vector<cv::Mat> planes;
    cv::split(image, planes);
    for (int c = 0; c < 3; ++c)
      cv::equalizeHist(planes[static_cast<std::size_t>(c)], planes[static_cast<std::size_t>(c)]);
    cv::merge(planes, image);
  }
};

Result<PixelFilter> parse_grayscale_or_equalize(const Call& call) {
  if (!call.values.empty()) return call.fail("no arguments");
  if (call.name == "grayscale") return call.made(Grayscale(), "");
  return call.made(Equalize(), "");
}

// colorize(r%, g%, b%, rrggbb): blends each channel towards the colour by its percentage.
struct Colorize final : FilterEffect {
  Colorize(int r, int g, int b, std::array<std::uint8_t, 3> colour)
      : red_pct(r), green_pct(g), blue_pct(b), rgb(colour) {}
  int red_pct, green_pct, blue_pct;  // 0..100
  std::array<std::uint8_t, 3> rgb;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    const int pct[3] = {blue_pct, green_pct, red_pct};
    const int fill[3] = {rgb[2], rgb[1], rgb[0]};
    ChannelTables lut{};
    for (int v = 0; v < 256; ++v) {
      for (std::size_t c = 0; c < 3; ++c) {
        double blended = (v * (100.0 - pct[c]) + fill[c] * pct[c]) / 100.0;
        lut[c][static_cast<std::size_t>(v)] = clamp_byte(static_cast<int>(blended));
      }
    }
    apply_lut(image, lut);
  }
};

Result<PixelFilter> parse_colorize(const Call& call) {
  const auto& a = call.values;
  std::optional<std::vector<int>> pct;
  std::optional<std::array<std::uint8_t, 3>> colour;
  if (a.size() == 4) {
    pct = integer_arguments({a[0], a[1], a[2]}, 3, 0, 100);
    colour = hex_colour(unquoted(a[3]));
  }
  if (!pct || !colour)
    return call.fail("three percentages from 0 to 100 and a colour such as ff0000");
  return call.made(Colorize((*pct)[0], (*pct)[1], (*pct)[2], *colour),
                   std::to_string((*pct)[0]) + "," + std::to_string((*pct)[1]) + "," +
                       std::to_string((*pct)[2]) + "," + hex_text(*colour));
}

// curve(all, r, g, b): tone curves through control points (natural cubic splines), as tables.
struct Curve final : FilterEffect {
  std::array<std::uint8_t, 256> all, red, green, blue;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    ChannelTables lut{};
    const std::array<const std::array<std::uint8_t, 256>*, 3> channel = {&blue, &green, &red};
    for (std::size_t c = 0; c < 3; ++c) {
      for (std::size_t v = 0; v < 256; ++v) lut[c][v] = all[(*channel[c])[v]];  // channel, then all
    }
    apply_lut(image, lut);
  }
};

// A 256-entry table from a natural cubic spline through `points` (x strictly increasing):
// before the first point, its y; after the last, the last y; rounded and clamped between.
std::array<std::uint8_t, 256> spline_table(const std::vector<std::pair<int, int>>& points) {
  const std::size_t n = points.size();
  // Second derivatives: tridiagonal system with zero curvature at both ends.
  std::vector<double> lower(n, 0), diag(n, 1), upper(n, 0), rhs(n, 0), second(n, 0);
  for (std::size_t i = 1; i + 1 < n; ++i) {
    const double x0 = points[i - 1].first, x1 = points[i].first, x2 = points[i + 1].first;
    const double y0 = points[i - 1].second, y1 = points[i].second, y2 = points[i + 1].second;
    lower[i] = (x1 - x0) / 6;
    diag[i] = (x2 - x0) / 3;
    upper[i] = (x2 - x1) / 6;
    rhs[i] = (y2 - y1) / (x2 - x1) - (y1 - y0) / (x1 - x0);
  }
  for (std::size_t i = 1; i < n; ++i) {  // forward elimination (Thomas algorithm)
    const double k = lower[i] / diag[i - 1];
    diag[i] -= k * upper[i - 1];
    rhs[i] -= k * rhs[i - 1];
  }
  for (std::size_t i = n; i-- > 0;) {
    second[i] = (rhs[i] - (i + 1 < n ? upper[i] * second[i + 1] : 0)) / diag[i];
  }
  std::array<std::uint8_t, 256> table{};
  table.fill(static_cast<std::uint8_t>(points.front().second));
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const double x0 = points[i].first, x1 = points[i + 1].first, h = x1 - x0;
    for (int x = points[i].first; x < points[i + 1].first; ++x) {
      const double b = (x - x0) / h, a = 1 - b;
      const double y = a * points[i].second + b * points[i + 1].second +
                       h * h / 6 * ((a * a * a - a) * second[i] + (b * b * b - b) * second[i + 1]);
      table[static_cast<std::size_t>(x)] = clamp_byte(static_cast<int>(std::lround(y)));
    }
  }
  for (int x = points.back().first; x < 256; ++x) {
    table[static_cast<std::size_t>(x)] = static_cast<std::uint8_t>(points.back().second);
  }
  return table;
}

// `[(x,y),(x,y),...]` lists separated by commas: exactly four of them for curve().
std::optional<std::vector<std::vector<std::pair<int, int>>>> curve_lists(std::string_view args) {
  std::vector<std::vector<std::pair<int, int>>> lists;
  std::size_t i = 0;
  auto skip_blanks = [&] {
    while (i < args.size() && args[i] == ' ') ++i;
  };
  while (true) {
    skip_blanks();
    if (i >= args.size() || args[i] != '[') return std::nullopt;
    std::size_t close = args.find(']', i);
    if (close == std::string_view::npos) return std::nullopt;
    std::vector<std::pair<int, int>> points;
    std::string_view body = args.substr(i + 1, close - i - 1);
    for (std::size_t at = 0; at < body.size();) {
      if (body[at] == ',' || body[at] == ' ') {
        ++at;
        continue;
      }
      std::size_t end = body.find(')', at);
      if (body[at] != '(' || end == std::string_view::npos) return std::nullopt;
      auto pair = split_arguments(body.substr(at + 1, end - at - 1));
      auto x = pair.size() == 2 ? integer_argument(pair[0]) : std::nullopt;
      auto y = pair.size() == 2 ? integer_argument(pair[1]) : std::nullopt;
      if (!x || !y || *x < 0 || *x > 255 || *y < 0 || *y > 255) return std::nullopt;
      if (!points.empty() && *x <= points.back().first) return std::nullopt;
      points.emplace_back(*x, *y);
      at = end + 1;
    }
    if (points.size() < 2 || points.size() > 256) return std::nullopt;
    lists.push_back(std::move(points));
    i = close + 1;
    skip_blanks();
    if (i == args.size()) break;
    if (args[i] != ',') return std::nullopt;
    ++i;
  }
  if (lists.size() != 4) return std::nullopt;
  return lists;
}

Result<PixelFilter> parse_curve(const Call& call) {
  auto lists = curve_lists(call.args);
  if (!lists) {
    return call.fail(
        "four curves [(x,y),...] (all, red, green, blue), each of 2 or more points "
        "from 0 to 255 with x increasing");
  }
  Curve curve;
  curve.all = spline_table((*lists)[0]);
  curve.red = spline_table((*lists)[1]);
  curve.green = spline_table((*lists)[2]);
  curve.blue = spline_table((*lists)[3]);
  std::string text;
  for (const auto& list : *lists) {
    text += text.empty() ? "[" : ",[";
    for (std::size_t i = 0; i < list.size(); ++i) {
      text += (i ? ",(" : "(") + std::to_string(list[i].first) + "," +
              std::to_string(list[i].second) + ")";
    }
    text += "]";
  }
  return call.made(std::move(curve), text);
}

constexpr Entry kColourFilters[] = {
    {"brightness", parse_brightness_or_contrast},
    {"contrast", parse_brightness_or_contrast},
    {"rgb", parse_rgb},
    {"saturation", parse_saturation},
    {"grayscale", parse_grayscale_or_equalize},
    {"equalize", parse_grayscale_or_equalize},
    {"colorize", parse_colorize},
    {"curve", parse_curve},
};

}  // namespace

std::span<const Entry> colour_filters() {
  return kColourFilters;
}

}  // namespace thimble::transform::filters
