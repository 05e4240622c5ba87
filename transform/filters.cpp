#include "transform/filters.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "transform/resize.h"

namespace thimble::transform {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Shortest decimal text that reads back as `value` (2.5 → "2.5", 3.0 → "3", 2e7 → "20000000"):
// never an exponent, which the argument grammar (decimal_argument) does not take.
std::string decimal_text(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed);
  return ec == std::errc() ? std::string(buffer, end) : std::to_string(value);
}

Status bad_arguments(std::string_view name, std::string_view args, std::string_view expected) {
  std::string message(name);
  message.append("(").append(args).append("): expected ").append(expected);
  return {Code::kBadRequest, std::move(message)};
}

using Parsed = std::optional<Result<PixelFilter>>;

// Integers within [lo, hi], exactly `count` of them.
std::optional<std::vector<int>> integers(const std::vector<std::string_view>& args,
                                         std::size_t count, int lo, int hi) {
  if (args.size() != count) return std::nullopt;
  std::vector<int> out;
  for (auto a : args) {
    auto v = integer_argument(a);
    if (!v || *v < lo || *v > hi) return std::nullopt;
    out.push_back(*v);
  }
  return out;
}

// `rrggbb` (optionally with a leading '#').
std::optional<std::array<std::uint8_t, 3>> hex_colour(std::string_view text) {
  if (!text.empty() && text.front() == '#') text.remove_prefix(1);
  if (text.size() != 6) return std::nullopt;
  std::array<std::uint8_t, 3> rgb{};
  for (int i = 0; i < 3; ++i) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data() + 2 * i, text.data() + 2 * i + 2, value, 16);
    if (ec != std::errc() || end != text.data() + 2 * i + 2) return std::nullopt;
    rgb[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(value);
  }
  return rgb;
}

std::uint8_t clamp_byte(int v) {
  return static_cast<std::uint8_t>(std::clamp(v, 0, 255));
}

// Applies a per-channel lookup table to the colour channels, leaving alpha alone.
void apply_lut(cv::Mat& image, const std::array<std::array<std::uint8_t, 256>, 3>& bgr) {
  cv::Mat lut(1, 256, CV_8UC(image.channels()));
  for (int v = 0; v < 256; ++v) {
    std::uint8_t* entry = lut.ptr<std::uint8_t>(0) + v * image.channels();
    for (int c = 0; c < 3; ++c)
      entry[c] = bgr[static_cast<std::size_t>(c)][static_cast<std::size_t>(v)];
    if (image.channels() == 4) entry[3] = static_cast<std::uint8_t>(v);
  }
  cv::LUT(image, lut, image);
}

// Runs `f(pixel)` on every pixel's first three bytes (B, G, R).
template <class F>
void for_each_colour(cv::Mat& image, F f) {
  const int channels = image.channels();
  for (int y = 0; y < image.rows; ++y) {
    std::uint8_t* p = image.ptr<std::uint8_t>(y);
    for (int x = 0; x < image.cols; ++x, p += channels) f(p);
  }
}

cv::Scalar bgra(const Colour& c) {
  return cv::Scalar(c.b, c.g, c.r, c.a);
}

// Composites `top` (BGR or BGRA) onto `bottom` (BGRA) at its top-left `at`, clipped to `bottom`.
// With `blend` false, `top`'s pixels (alpha included) simply replace `bottom`'s.
void paste(cv::Mat& bottom, const cv::Mat& top, cv::Point at, bool blend) {
  cv::Rect area = cv::Rect(at, top.size()) & cv::Rect(cv::Point(0, 0), bottom.size());
  if (area.empty()) return;
  cv::Mat source = top(cv::Rect(area.tl() - at, area.size()));
  cv::Mat target = bottom(area);
  if (source.channels() == 3) {
    cv::cvtColor(source, target, cv::COLOR_BGR2BGRA);
    return;
  }
  if (!blend) {
    source.copyTo(target);
    return;
  }
  for (int y = 0; y < area.height; ++y) {
    const cv::Vec4b* s = source.ptr<cv::Vec4b>(y);
    cv::Vec4b* t = target.ptr<cv::Vec4b>(y);
    for (int x = 0; x < area.width; ++x) {
      const int a = s[x][3], below = t[x][3] * (255 - a) / 255, out = a + below;
      for (int c = 0; c < 3; ++c) {
        t[x][c] = out ? static_cast<std::uint8_t>((s[x][c] * a + t[x][c] * below) / out) : 0;
      }
      t[x][3] = static_cast<std::uint8_t>(out);
    }
  }
}

// Drops the alpha channel when every pixel is opaque.
void drop_opaque_alpha(cv::Mat& image) {
  if (image.channels() != 4 || has_translucency(image)) return;
  cv::cvtColor(image, image, cv::COLOR_BGRA2BGR);
}

// The per-channel median colour of the image, opaque (fill(auto)).
Colour median_colour(const cv::Mat& image) {
  std::array<std::array<int, 256>, 3> histogram{};
  for (int y = 0; y < image.rows; ++y) {
    const std::uint8_t* p = image.ptr<std::uint8_t>(y);
    for (int x = 0; x < image.cols; ++x, p += image.channels()) {
      for (std::size_t c = 0; c < 3; ++c) ++histogram[c][p[c]];
    }
  }
  std::array<std::uint8_t, 3> median{};
  const long half = static_cast<long>(image.total()) / 2;
  for (std::size_t c = 0; c < 3; ++c) {
    long seen = 0;
    int v = 0;
    while (v < 255 && (seen += histogram[c][static_cast<std::size_t>(v)]) <= half) ++v;
    median[c] = static_cast<std::uint8_t>(v);
  }
  return Colour{median[2], median[1], median[0], 255};
}

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

// Wavelet sharpening of one float plane (values 0-1), in place.
void wavelet_sharpen(cv::Mat& plane, double amount, double radius) {
  cv::Mat result = cv::Mat::zeros(plane.size(), CV_32F);
  cv::Mat current = plane;
  for (int level = 0; level < 5; ++level) {
    // The "hat" low-pass: [1 2 1] / 4 with holes, 2^level apart; mirrored borders.
    const int step = 1 << level;
    cv::Mat kernel = cv::Mat::zeros(2 * step + 1, 1, CV_32F);
    kernel.at<float>(0) = 0.25f;
    kernel.at<float>(step) = 0.5f;
    kernel.at<float>(2 * step) = 0.25f;
    cv::Mat low;
    cv::sepFilter2D(current, low, CV_32F, kernel, kernel, cv::Point(-1, -1), 0,
                    cv::BORDER_REFLECT_101);
    const double gain = amount * std::exp(-(level - radius) * (level - radius) / 1.5) + 1.0;
    cv::Mat detail = (current - low) * gain;
    result += detail;
    current = low;
  }
  plane = result + current;
}

// Thumbor's placement of a `mark`-long watermark along an `image`-long side: the offsets of its
// copies (one unless it repeats).
std::vector<int> watermark_offsets(const WatermarkPosition& p, int image, int mark,
                                   std::pair<int, int> repeat) {
  switch (p.kind) {
    case WatermarkPosition::Kind::kCenter: return {(image - mark) / 2};
    case WatermarkPosition::Kind::kRepeat: {
      const int count = repeat.first;
      const int space = repeat.second / (std::max(count, 2) - 1);
      std::vector<int> offsets;
      for (int i = 0; i < count; ++i) offsets.push_back(i * space + i * mark);
      return offsets;
    }
    case WatermarkPosition::Kind::kPercent:
    case WatermarkPosition::Kind::kPixels: {
      int value = p.value;
      if (p.kind == WatermarkPosition::Kind::kPercent) {
        value = static_cast<int>(std::nearbyint(image * p.value / 100.0 + 1e-5));
      }
      return {p.negative ? image - mark - value : value};
    }
  }
  return {0};
}

// How many copies a repeating side gets and the room left between them (Thumbor's rules).
std::pair<int, int> repeat_layout(int image, int mark) {
  if (image < 2 * mark) return {(image + mark - 1) / mark, 10};
  return {image / mark, image % mark};
}

struct Apply {
  cv::Mat& image;
  cv::Size box;
  const WatermarkImages* marks = nullptr;

  void operator()(const Brightness& f) const {
    const int delta = 255 * f.amount / 100;
    std::array<std::array<std::uint8_t, 256>, 3> lut{};
    for (int v = 0; v < 256; ++v) {
      for (auto& channel : lut) channel[static_cast<std::size_t>(v)] = clamp_byte(v + delta);
    }
    apply_lut(image, lut);
  }
  void operator()(const Contrast& f) const {
    const int factor = (f.amount + 100) * (f.amount + 100) / 100;
    std::array<std::array<std::uint8_t, 256>, 3> lut{};
    for (int v = 0; v < 256; ++v) {
      for (auto& channel : lut) {
        channel[static_cast<std::size_t>(v)] = clamp_byte(factor * (v - 128) / 100 + 128);
      }
    }
    apply_lut(image, lut);
  }
  void operator()(const Rgb& f) const {
    const int delta[3] = {255 * f.blue / 100, 255 * f.green / 100, 255 * f.red / 100};  // BGR
    std::array<std::array<std::uint8_t, 256>, 3> lut{};
    for (int v = 0; v < 256; ++v) {
      for (std::size_t c = 0; c < 3; ++c)
        lut[c][static_cast<std::size_t>(v)] = clamp_byte(v + delta[c]);
    }
    apply_lut(image, lut);
  }
  void operator()(const Saturation& f) const {
    const float change = static_cast<float>(f.change);
    for_each_colour(image, [change](std::uint8_t* p) {
      const float b = p[0], g = p[1], r = p[2];
      const float grey = std::sqrt(r * r * 0.299f + g * g * 0.587f + b * b * 0.114f);
      for (int c = 0; c < 3; ++c)
        p[c] = clamp_byte(static_cast<int>(grey + (p[c] - grey) * change));
    });
  }
  void operator()(const Grayscale&) const {
    cv::Mat grey;
    cv::cvtColor(image, grey, image.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
    std::vector<cv::Mat> planes{grey, grey, grey};
    if (image.channels() == 4) {
      planes.emplace_back();
      cv::extractChannel(image, planes.back(), 3);
    }
    cv::merge(planes, image);
  }
  void operator()(const Equalize&) const {
    std::vector<cv::Mat> planes;
    cv::split(image, planes);
    for (int c = 0; c < 3; ++c)
      cv::equalizeHist(planes[static_cast<std::size_t>(c)], planes[static_cast<std::size_t>(c)]);
    cv::merge(planes, image);
  }
  void operator()(const Blur& f) const {
    if (f.radius == 0) return;
    const int size = 2 * f.radius + 1;
    cv::GaussianBlur(image, image, cv::Size(size, size), f.sigma, f.sigma, cv::BORDER_REPLICATE);
  }
  void operator()(const Convolution& f) const {
    const int rows = static_cast<int>(f.kernel.size()) / f.columns;
    cv::Mat kernel(rows, f.columns, CV_64F, const_cast<double*>(f.kernel.data()));
    cv::Mat sums;
    cv::filter2D(image, sums, CV_64F, kernel, cv::Point(-1, -1), 0, cv::BORDER_REPLICATE);
    // Thumbor truncates each sum towards zero before clamping; so does Thimble.
    cv::Mat values = sums.reshape(1);
    values.forEach<double>([](double& v, const int*) { v = std::trunc(v); });
    sums.convertTo(image, CV_8U);
  }
  void operator()(const Noise& f) const {
    if (f.amount == 0) return;
    // Seeded from the image size: the same URL always gives the same bytes (and one ETag).
    std::mt19937 random(static_cast<std::uint32_t>(image.cols) * 65537u ^
                        static_cast<std::uint32_t>(image.rows));
    const int amount = f.amount, half = f.amount >> 1;
    for_each_colour(image, [&](std::uint8_t* p) {
      const int delta = static_cast<int>(random() % static_cast<unsigned>(amount)) - half;
      for (int c = 0; c < 3; ++c) p[c] = clamp_byte(p[c] + delta);
    });
  }
  void operator()(const Rotate& f) const {
    if (f.degrees == 0) return;
    cv::Mat rotated;
    cv::rotate(image, rotated,
               f.degrees == 90    ? cv::ROTATE_90_COUNTERCLOCKWISE
               : f.degrees == 180 ? cv::ROTATE_180
                                  : cv::ROTATE_90_CLOCKWISE);
    image = rotated;
  }
  void operator()(const Colorize& f) const {
    const int pct[3] = {f.blue_pct, f.green_pct, f.red_pct};
    const int fill[3] = {f.rgb[2], f.rgb[1], f.rgb[0]};
    std::array<std::array<std::uint8_t, 256>, 3> lut{};
    for (int v = 0; v < 256; ++v) {
      for (std::size_t c = 0; c < 3; ++c) {
        double blended = (v * (100.0 - pct[c]) + fill[c] * pct[c]) / 100.0;
        lut[c][static_cast<std::size_t>(v)] = clamp_byte(static_cast<int>(blended));
      }
    }
    apply_lut(image, lut);
  }
  void operator()(const Fill& f) const {
    const cv::Size canvas_size(box.width > 0 ? box.width : image.cols,
                               box.height > 0 ? box.height : image.rows);
    cv::Mat canvas;
    if (f.kind == Fill::Kind::kBlur) {
      // The image itself, blurred and stretched over the box.
      cv::Mat blurred, bgra;
      cv::GaussianBlur(image, blurred, cv::Size(0, 0), 50, 50, cv::BORDER_REPLICATE);
      cv::resize(blurred, canvas, canvas_size, 0, 0, cv::INTER_LINEAR);
      if (canvas.channels() == 3) cv::cvtColor(canvas, canvas, cv::COLOR_BGR2BGRA);
    } else {
      const Colour colour = f.kind == Fill::Kind::kAuto ? median_colour(image) : f.colour;
      canvas = cv::Mat(canvas_size, CV_8UC4, bgra(colour));
    }
    // Centred, with Python's floor division for the offset.
    auto offset = [](int outer, int inner) {
      int d = outer - inner;
      return d >= 0 ? d / 2 : -((-d + 1) / 2);
    };
    paste(canvas, image, {offset(canvas.cols, image.cols), offset(canvas.rows, image.rows)},
          f.fill_transparent);
    image = canvas;
    drop_opaque_alpha(image);
  }
  void operator()(const BackgroundColour& f) const {
    if (image.channels() != 4) return;
    cv::Mat canvas(image.size(), CV_8UC4, bgra(f.colour));
    paste(canvas, image, {0, 0}, /*blend=*/true);
    image = canvas;
    drop_opaque_alpha(image);
  }
  void operator()(const Curve& f) const {
    std::array<std::array<std::uint8_t, 256>, 3> lut{};
    const std::array<const std::array<std::uint8_t, 256>*, 3> channel = {&f.blue, &f.green, &f.red};
    for (std::size_t c = 0; c < 3; ++c) {
      for (std::size_t v = 0; v < 256; ++v)
        lut[c][v] = f.all[(*channel[c])[v]];  // channel, then all
    }
    apply_lut(image, lut);
  }
  void operator()(const RoundCorner& f) const {
    const double a = std::min(f.a_radius, image.cols / 2), b = std::min(f.b_radius, image.rows / 2);
    if (a < 1 || b < 1) return;
    if (f.transparent && image.channels() == 3) cv::cvtColor(image, image, cv::COLOR_BGR2BGRA);
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
          if (f.transparent) {
            p[3] = static_cast<std::uint8_t>(std::lround(p[3] * (1 - cover)));
          } else {
            for (int c = 0; c < 3; ++c) {
              const int paint = f.rgb[static_cast<std::size_t>(2 - c)];
              p[c] = static_cast<std::uint8_t>(std::lround(p[c] * (1 - cover) + paint * cover));
            }
          }
        }
      }
    }
  }
  void operator()(const Sharpen& f) const {
    cv::Mat colour;
    if (image.channels() == 4) {
      cv::cvtColor(image, colour, cv::COLOR_BGRA2BGR);
    } else {
      colour = image;
    }
    cv::Mat planes_source;
    if (f.luminance_only) {
      cv::cvtColor(colour, planes_source, cv::COLOR_BGR2YCrCb);
    } else {
      planes_source = colour;
    }
    cv::Mat floating;
    planes_source.convertTo(floating, CV_32F, 1.0 / 255.0);
    std::vector<cv::Mat> planes;
    cv::split(floating, planes);
    for (std::size_t c = 0; c < planes.size(); ++c) {
      if (f.luminance_only && c != 0) continue;  // Y only
      wavelet_sharpen(planes[c], f.amount, f.radius);
    }
    cv::merge(planes, floating);
    cv::Mat sharpened;
    floating.convertTo(sharpened, CV_8U, 255.0);
    if (f.luminance_only) cv::cvtColor(sharpened, sharpened, cv::COLOR_YCrCb2BGR);
    if (image.channels() == 4) {
      std::vector<cv::Mat> out;
      cv::split(sharpened, out);
      out.emplace_back();
      cv::extractChannel(image, out.back(), 3);
      cv::merge(out, image);
    } else {
      image = sharpened;
    }
  }
  void operator()(const Watermark& f) const {
    if (!marks) return;
    auto found = marks->find(f.image);
    if (found == marks->end() || found->second.empty()) return;
    cv::Mat mark = found->second.clone();  // 8-bit BGRA
    if (f.alpha > 0) {
      cv::Mat alpha;
      cv::extractChannel(mark, alpha, 3);
      alpha.convertTo(alpha, CV_8U, (100 - f.alpha) / 100.0);
      cv::insertChannel(alpha, mark, 3);
    }
    if (f.width_ratio || f.height_ratio) {
      // Thumbor's calc_watermark_size: fit the mark inside the ratio box, keeping its aspect.
      const double mw = mark.cols, mh = mark.rows;
      double max_w = f.width_ratio ? image.cols * *f.width_ratio / 100.0 : 0;
      double max_h = f.height_ratio ? image.rows * *f.height_ratio / 100.0 : 0;
      if (!f.width_ratio) max_w = mw * max_h / mh;
      if (!f.height_ratio) max_h = mh * max_w / mw;
      int w = 0, h = 0;
      if (mw / max_w >= mh / max_h) {
        h = static_cast<int>(std::nearbyint(mh * max_w / mw));
        w = static_cast<int>(std::nearbyint(max_w));
      } else {
        h = static_cast<int>(std::nearbyint(max_h));
        w = static_cast<int>(std::nearbyint(mw * max_h / mh));
      }
      cv::Mat resized;
      resize_image(mark, resized, cv::Size(std::max(w, 1), std::max(h, 1)));
      mark = resized;
    }
    std::pair<int, int> repeat_x = repeat_layout(image.cols, mark.cols);
    std::pair<int, int> repeat_y = repeat_layout(image.rows, mark.rows);
    const bool both = f.x.kind == WatermarkPosition::Kind::kRepeat &&
                      f.y.kind == WatermarkPosition::Kind::kRepeat;
    if (both && repeat_x.first * repeat_y.first > 100) {
      const int tx = std::min(6, repeat_x.first), ty = std::min(6, repeat_y.first);
      repeat_x = {tx, image.cols - tx * mark.cols};
      repeat_y = {ty, image.rows - ty * mark.rows};
    }
    if (image.channels() == 3) cv::cvtColor(image, image, cv::COLOR_BGR2BGRA);
    for (int x : watermark_offsets(f.x, image.cols, mark.cols, repeat_x)) {
      for (int y : watermark_offsets(f.y, image.rows, mark.rows, repeat_y)) {
        paste(image, mark, {x, y}, /*blend=*/true);
      }
    }
    drop_opaque_alpha(image);
  }
  void operator()(const Proportion& f) const {
    const int width = static_cast<int>(image.cols * f.factor);
    const int height = static_cast<int>(image.rows * f.factor);
    if (width < 1 || height < 1) return;
    cv::Mat resized;
    resize_image(image, resized, cv::Size(width, height));
    image = resized;
  }
};

}  // namespace

std::vector<std::string_view> split_arguments(std::string_view args) {
  // Commas separate arguments, except inside a 'single-quoted' string (Thumbor's String type).
  std::vector<std::string_view> out;
  if (trim(args).empty()) return out;
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i <= args.size(); ++i) {
    if (i < args.size() && args[i] == '\'') quoted = !quoted;
    if (i == args.size() || (args[i] == ',' && !quoted)) {
      out.push_back(trim(args.substr(start, i - start)));
      start = i + 1;
    }
  }
  return out;
}

std::optional<int> integer_argument(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> decimal_argument(std::string_view text) {
  // Thumbor's DecimalNumber: -?(digits[.digits] | .digits); no exponents, no inf/nan.
  if (text.empty() || text.size() > 24) return std::nullopt;
  std::string_view digits = text.front() == '-' ? text.substr(1) : text;
  if (digits.empty() || digits == "." ||
      digits.find_first_not_of("0123456789.") != std::string_view::npos ||
      std::count(digits.begin(), digits.end(), '.') > 1) {
    return std::nullopt;
  }
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<bool> boolean_argument(std::string_view text) {
  if (text == "true" || text == "True" || text == "1") return true;
  if (text == "false" || text == "False" || text == "0") return false;
  return std::nullopt;
}

Parsed parse_pixel_filter(std::string_view name, std::string_view args) {
  const auto a = split_arguments(args);
  auto call = [&](std::string text) { return std::string(name) + "(" + text + ")"; };
  auto done = [](PixelOp op, std::string text) -> Parsed {
    return Result<PixelFilter>(PixelFilter{std::move(op), std::move(text)});
  };
  auto fail = [&](std::string_view expected) -> Parsed {
    return bad_arguments(name, args, expected);
  };

  if (name == "brightness" || name == "contrast") {
    auto v = integers(a, 1, -100, 100);
    if (!v) return fail("a whole number from -100 to 100");
    PixelOp op = name == "brightness" ? PixelOp(Brightness{(*v)[0]}) : PixelOp(Contrast{(*v)[0]});
    return done(op, call(std::to_string((*v)[0])));
  }
  if (name == "rgb") {
    auto v = integers(a, 3, -100, 100);
    if (!v) return fail("three whole numbers from -100 to 100");
    return done(Rgb{(*v)[0], (*v)[1], (*v)[2]},
                call(std::to_string((*v)[0]) + "," + std::to_string((*v)[1]) + "," +
                     std::to_string((*v)[2])));
  }
  if (name == "saturation") {
    auto v = a.size() == 1 ? decimal_argument(a[0]) : std::nullopt;
    if (!v || *v < -10 || *v > 10) return fail("a decimal number from -10 to 10");
    return done(Saturation{*v}, call(decimal_text(*v)));
  }
  if (name == "grayscale" || name == "equalize") {
    if (!a.empty()) return fail("no arguments");
    return done(name == "grayscale" ? PixelOp(Grayscale{}) : PixelOp(Equalize{}), call(""));
  }
  if (name == "blur") {
    auto radius = !a.empty() && a.size() <= 2 ? integer_argument(a[0]) : std::nullopt;
    auto sigma = a.size() == 2 ? decimal_argument(a[1]) : std::optional<double>(0);
    if (!radius || *radius < 0 || *radius > 150 || !sigma || *sigma < 0) {
      return fail("a radius from 0 to 150 and an optional positive sigma");
    }
    double s = *sigma == 0 ? *radius : *sigma;
    return done(Blur{*radius, s}, call(std::to_string(*radius) + "," + decimal_text(s)));
  }
  if (name == "convolution") {
    const char* expected =
        "a ';'-separated matrix with an odd number of odd-length rows (at most 15x15), the "
        "number of columns and an optional true/false to normalise";
    if (a.size() < 2 || a.size() > 3) return fail(expected);
    auto columns = integer_argument(a[1]);
    auto normalize = a.size() == 3 ? boolean_argument(a[2]) : std::optional<bool>(true);
    std::vector<double> kernel;
    for (std::string_view rest = a[0]; kernel.size() <= 225;) {
      std::size_t semicolon = rest.find(';');
      auto v = decimal_argument(rest.substr(0, semicolon));
      if (!v) return fail(expected);
      kernel.push_back(*v);
      if (semicolon == std::string_view::npos) break;
      rest.remove_prefix(semicolon + 1);
    }
    if (!columns || !normalize || *columns < 1 || *columns > 15 || kernel.size() > 225 ||
        kernel.size() % static_cast<std::size_t>(*columns) != 0 || kernel.size() % 2 == 0 ||
        (kernel.size() / static_cast<std::size_t>(*columns)) % 2 == 0) {
      return fail(expected);
    }
    std::string text;
    double sum = 0;
    for (double k : kernel) {
      text += (text.empty() ? "" : ";") + decimal_text(k);
      sum += k;
    }
    if (*normalize && sum != 0) {
      for (double& k : kernel) k /= sum;
    }
    return done(Convolution{kernel, *columns}, call(text + "," + std::to_string(*columns) + "," +
                                                    (*normalize ? "true" : "false")));
  }
  if (name == "noise") {
    auto v = integers(a, 1, 0, 100);
    if (!v) return fail("a whole number from 0 to 100");
    return done(Noise{(*v)[0]}, call(std::to_string((*v)[0])));
  }
  if (name == "rotate") {
    auto v = a.size() == 1 ? integer_argument(a[0]) : std::nullopt;
    if (!v || *v % 90 != 0) return fail("an angle in degrees that is a multiple of 90");
    int degrees = ((*v % 360) + 360) % 360;
    return done(Rotate{degrees}, call(std::to_string(degrees)));
  }
  if (name == "colorize") {
    std::optional<std::vector<int>> pct;
    std::optional<std::array<std::uint8_t, 3>> colour;
    if (a.size() == 4) {
      pct = integers({a[0], a[1], a[2]}, 3, 0, 100);
      std::string_view text = a[3];
      if (text.size() >= 2 && text.front() == '\'' && text.back() == '\'') {
        text = text.substr(1, text.size() - 2);
      }
      colour = hex_colour(text);
    }
    if (!pct || !colour) return fail("three percentages from 0 to 100 and a colour such as ff0000");
    char hex[8];
    std::snprintf(hex, sizeof hex, "%02x%02x%02x", (*colour)[0], (*colour)[1], (*colour)[2]);
    return done(Colorize{(*pct)[0], (*pct)[1], (*pct)[2], *colour},
                call(std::to_string((*pct)[0]) + "," + std::to_string((*pct)[1]) + "," +
                     std::to_string((*pct)[2]) + "," + hex));
  }
  if (name == "fill") {
    // Thumbor's colour argument is `[\w]+`: a name, hex digits, auto, blur or transparent.
    const char* expected =
        "a colour (name, hex, transparent, auto or blur) and an optional true/false";
    if (a.empty() || a.size() > 2) return fail(expected);
    Fill fill;
    auto transparent = a.size() == 2 ? boolean_argument(a[1]) : std::optional<bool>(false);
    if (!transparent) return fail(expected);
    fill.fill_transparent = *transparent;
    std::string colour_text;
    if (a[0] == "auto" || a[0] == "blur") {
      fill.kind = a[0] == "auto" ? Fill::Kind::kAuto : Fill::Kind::kBlur;
      colour_text = std::string(a[0]);
    } else {
      auto colour = parse_colour(a[0]);
      if (!colour || a[0].front() == '#') return fail(expected);
      fill.colour = *colour;
      char hex[10];
      std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", colour->r, colour->g, colour->b,
                    colour->a);
      colour_text = hex;
    }
    return done(fill, call(colour_text + "," + (fill.fill_transparent ? "true" : "false")));
  }
  if (name == "background_color") {
    auto colour = a.size() == 1 ? parse_colour(a[0]) : std::nullopt;
    if (!colour || a[0].front() == '#' || colour->a != 255) {
      return fail("an opaque colour: a name such as white or hex digits such as ffffff");
    }
    char hex[8];
    std::snprintf(hex, sizeof hex, "%02x%02x%02x", colour->r, colour->g, colour->b);
    return done(BackgroundColour{*colour}, call(hex));
  }
  if (name == "watermark") {
    const char* expected =
        "an image, x and y (pixels, -pixels, Np, center or repeat), an alpha from 0 to 100 and "
        "optional width and height ratios (1 to 100 or none)";
    if (a.size() < 4 || a.size() > 6) return fail(expected);
    Watermark mark;
    std::string_view image = a[0];
    if (image.size() >= 2 && image.front() == '\'' && image.back() == '\'') {
      image = image.substr(1, image.size() - 2);
    }
    if (image.empty() || image.find('\'') != std::string_view::npos) return fail(expected);
    mark.image = std::string(image);
    auto position = [](std::string_view text) -> std::optional<WatermarkPosition> {
      WatermarkPosition p;
      if (text == "center") return p.kind = WatermarkPosition::Kind::kCenter, p;
      if (text == "repeat") return p.kind = WatermarkPosition::Kind::kRepeat, p;
      p.negative = !text.empty() && text.front() == '-';
      if (p.negative) text.remove_prefix(1);
      if (!text.empty() && text.back() == 'p') {
        p.kind = WatermarkPosition::Kind::kPercent;
        text.remove_suffix(1);
      }
      if (text.empty() || text.size() > 5 ||
          text.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
      }
      p.value = *integer_argument(text);
      return p;
    };
    auto ratio = [](std::string_view text, std::optional<int>& out) {
      if (text == "none") return true;
      auto v = integer_argument(text);
      if (!v || *v < 1 || *v > 100) return false;
      out = *v;
      return true;
    };
    auto x = position(a[1]), y = position(a[2]);
    auto alpha = integer_argument(a[3]);
    if (!x || !y || !alpha || *alpha < 0 || *alpha > 100 ||
        (a.size() > 4 && !ratio(a[4], mark.width_ratio)) ||
        (a.size() > 5 && !ratio(a[5], mark.height_ratio))) {
      return fail(expected);
    }
    mark.x = *x;
    mark.y = *y;
    mark.alpha = *alpha;
    auto position_text = [](const WatermarkPosition& p) -> std::string {
      switch (p.kind) {
        case WatermarkPosition::Kind::kCenter: return "center";
        case WatermarkPosition::Kind::kRepeat: return "repeat";
        case WatermarkPosition::Kind::kPercent:
          return (p.negative ? "-" : "") + std::to_string(p.value) + "p";
        case WatermarkPosition::Kind::kPixels:
          return (p.negative ? "-" : "") + std::to_string(p.value);
      }
      return {};
    };
    auto ratio_text = [](const std::optional<int>& r) {
      return r ? std::to_string(*r) : std::string("none");
    };
    const bool quote = mark.image.find(',') != std::string::npos;
    return done(mark, call((quote ? "'" : "") + mark.image + (quote ? "'" : "") + "," +
                           position_text(mark.x) + "," + position_text(mark.y) + "," +
                           std::to_string(mark.alpha) + "," + ratio_text(mark.width_ratio) + "," +
                           ratio_text(mark.height_ratio)));
  }
  if (name == "sharpen") {
    const char* expected =
        "an amount (0 to 100), a radius (0 to 10) and true/false for luminance only";
    if (a.size() != 3) return fail(expected);
    const auto amount = decimal_argument(a[0]);
    const auto radius = decimal_argument(a[1]);
    const auto luminance = boolean_argument(a[2]);
    if (!amount || !radius || !luminance || *amount < 0 || *amount > 100 || *radius < 0 ||
        *radius > 10) {
      return fail(expected);
    }
    const bool luminance_only = *luminance;
    return done(Sharpen{*amount, *radius, luminance_only},
                call(decimal_text(*amount) + "," + decimal_text(*radius) + "," +
                     (luminance_only ? "true" : "false")));
  }
  if (name == "curve") {
    auto lists = curve_lists(args);
    if (!lists) {
      return fail(
          "four curves [(x,y),...] (all, red, green, blue), each of 2 or more points "
          "from 0 to 255 with x increasing");
    }
    Curve curve{spline_table((*lists)[0]), spline_table((*lists)[1]), spline_table((*lists)[2]),
                spline_table((*lists)[3])};
    std::string text;
    for (const auto& list : *lists) {
      text += text.empty() ? "[" : ",[";
      for (std::size_t i = 0; i < list.size(); ++i) {
        text += (i ? ",(" : "(") + std::to_string(list[i].first) + "," +
                std::to_string(list[i].second) + ")";
      }
      text += "]";
    }
    return done(curve, call(text));
  }
  if (name == "round_corner") {
    const char* expected =
        "radius or a|b radii (0 to 10000), red, green, blue (0 to 255) and an optional "
        "true/false for transparent corners";
    if (a.size() < 4 || a.size() > 5) return fail(expected);
    std::string_view radii = a[0];
    std::size_t bar = radii.find('|');
    auto ra = integer_argument(radii.substr(0, bar));
    auto rb = bar == std::string_view::npos ? ra : integer_argument(radii.substr(bar + 1));
    auto rgb = integers({a[1], a[2], a[3]}, 3, 0, 255);
    auto transparent = a.size() == 5 ? boolean_argument(a[4]) : std::optional<bool>(false);
    if (!ra || !rb || *ra < 0 || *rb < 0 || *ra > 10000 || *rb > 10000 || !rgb || !transparent) {
      return fail(expected);
    }
    RoundCorner corner{*ra,
                       *rb,
                       {static_cast<std::uint8_t>((*rgb)[0]), static_cast<std::uint8_t>((*rgb)[1]),
                        static_cast<std::uint8_t>((*rgb)[2])},
                       *transparent};
    return done(corner, call(std::to_string(*ra) + "|" + std::to_string(*rb) + "," +
                             std::to_string((*rgb)[0]) + "," + std::to_string((*rgb)[1]) + "," +
                             std::to_string((*rgb)[2]) + "," + (*transparent ? "true" : "false")));
  }
  if (name == "proportion") {
    auto v = a.size() == 1 ? decimal_argument(a[0]) : std::nullopt;
    if (!v || *v <= 0 || *v > 1) return fail("a factor greater than 0 and at most 1");
    return done(Proportion{*v}, call(decimal_text(*v)));
  }
  return std::nullopt;
}

void apply_pixel_filters(cv::Mat& image, const std::vector<PixelFilter>& filters, int box_width,
                         int box_height, const WatermarkImages* marks) {
  // Thumbor runs the filters of one phase from the last in the URL to the first.
  for (auto it = filters.rbegin(); it != filters.rend(); ++it) {
    std::visit(Apply{image, cv::Size(box_width, box_height), marks}, it->op);
  }
}

std::vector<std::string> watermark_keys(const std::vector<PixelFilter>& filters) {
  std::vector<std::string> keys;
  for (const auto& f : filters) {
    if (const auto* mark = std::get_if<Watermark>(&f.op);
        mark && std::find(keys.begin(), keys.end(), mark->image) == keys.end()) {
      keys.push_back(mark->image);
    }
  }
  return keys;
}

std::pair<int, int> size_after_filters(int width, int height,
                                       const std::vector<PixelFilter>& filters, int box_width,
                                       int box_height) {
  for (auto it = filters.rbegin(); it != filters.rend(); ++it) {
    if (const auto* rotate = std::get_if<Rotate>(&it->op); rotate && rotate->degrees % 180) {
      std::swap(width, height);
    } else if (const auto* proportion = std::get_if<Proportion>(&it->op)) {
      const int w = static_cast<int>(width * proportion->factor);
      const int h = static_cast<int>(height * proportion->factor);
      if (w >= 1 && h >= 1) width = w, height = h;
    } else if (std::holds_alternative<Fill>(it->op)) {
      if (box_width > 0) width = box_width;
      if (box_height > 0) height = box_height;
    }
  }
  return {width, height};
}

bool pads_to_box(const std::vector<PixelFilter>& filters) {
  return std::any_of(filters.begin(), filters.end(),
                     [](const PixelFilter& f) { return std::holds_alternative<Fill>(f.op); });
}

Colour flatten_colour(const std::vector<PixelFilter>& filters) {
  for (const auto& f : filters) {
    if (const auto* background = std::get_if<BackgroundColour>(&f.op)) return background->colour;
    if (const auto* fill = std::get_if<Fill>(&f.op);
        fill && fill->kind == Fill::Kind::kColour && fill->colour.a == 255) {
      return fill->colour;
    }
  }
  return Colour{255, 255, 255, 255};
}

}  // namespace thimble::transform
