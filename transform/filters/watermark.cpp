// The watermark filter: another image of the same source pasted on top.
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "transform/filters/family.h"
#include "transform/filters/pixels.h"
#include "transform/resize.h"

namespace thimble::transform::filters {
namespace {

// A position along one side: pixels (negative: from the right/bottom), `Np` percent, `center`
// or `repeat` (tiled).
struct WatermarkPosition {
  enum class Kind : std::uint8_t { kPixels, kPercent, kCenter, kRepeat } kind = Kind::kPixels;
  int value = 0;          // pixels or percent
  bool negative = false;  // measured from the right/bottom (`-0` counts)
};

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

// watermark(image, x, y, alpha[, w_ratio[, h_ratio]]): alpha is the mark's transparency in
// percent; the ratios bound the mark to a percentage of the image's width/height.
struct Watermark final : FilterEffect {
  std::string image_source;  // a source key, like the main image's
  WatermarkPosition x_position, y_position;
  int alpha = 0;                                 // 0 opaque .. 100 invisible
  std::optional<int> width_ratio, height_ratio;  // percent of the image
  void apply(cv::Mat& image, const FilterCanvas& canvas) const override {
    if (!canvas.marks) return;
    auto found = canvas.marks->find(image_source);
    if (found == canvas.marks->end() || found->second.empty()) return;
    cv::Mat mark = found->second.clone();  // 8-bit BGRA
    if (alpha > 0) {
      cv::Mat opacity;
      cv::extractChannel(mark, opacity, 3);
      opacity.convertTo(opacity, CV_8U, (100 - alpha) / 100.0);
      cv::insertChannel(opacity, mark, 3);
    }
    if (width_ratio || height_ratio) {
      // Thumbor's calc_watermark_size: fit the mark inside the ratio box, keeping its aspect.
      const double mw = mark.cols, mh = mark.rows;
      double max_w = width_ratio ? image.cols * *width_ratio / 100.0 : 0;
      double max_h = height_ratio ? image.rows * *height_ratio / 100.0 : 0;
      if (!width_ratio) max_w = mw * max_h / mh;
      if (!height_ratio) max_h = mh * max_w / mw;
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
    const bool both = x_position.kind == WatermarkPosition::Kind::kRepeat &&
                      y_position.kind == WatermarkPosition::Kind::kRepeat;
    if (both && repeat_x.first * repeat_y.first > 100) {
      const int tx = std::min(6, repeat_x.first), ty = std::min(6, repeat_y.first);
      repeat_x = {tx, image.cols - tx * mark.cols};
      repeat_y = {ty, image.rows - ty * mark.rows};
    }
    if (image.channels() == 3) cv::cvtColor(image, image, cv::COLOR_BGR2BGRA);
    for (int x : watermark_offsets(x_position, image.cols, mark.cols, repeat_x)) {
      for (int y : watermark_offsets(y_position, image.rows, mark.rows, repeat_y)) {
        paste(image, mark, {x, y}, /*blend=*/true);
      }
    }
    drop_opaque_alpha(image);
  }
  const std::string* image_key() const override { return &image_source; }
  Status within(const SpecLimits&, const std::string&) const override {
    return Status::Ok();  // counted over the whole URL: check_filter_limits()
  }
};

Result<PixelFilter> parse_watermark(const Call& call) {
  const char* expected =
      "an image, x and y (pixels, -pixels, Np, center or repeat), an alpha from 0 to 100 and "
      "optional width and height ratios (1 to 100 or none)";
  const auto& a = call.values;
  if (a.size() < 4 || a.size() > 6) return call.fail(expected);
  Watermark mark;
  std::string_view image = unquoted(a[0]);
  if (image.empty() || image.find('\'') != std::string_view::npos) return call.fail(expected);
  mark.image_source = std::string(image);
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
    return call.fail(expected);
  }
  mark.x_position = *x;
  mark.y_position = *y;
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
  const bool quote = mark.image_source.find(',') != std::string::npos;
  return call.made(mark, ((quote ? "'" : "") + mark.image_source + (quote ? "'" : "") + "," +
                          position_text(mark.x_position) + "," + position_text(mark.y_position) +
                          "," + std::to_string(mark.alpha) + "," + ratio_text(mark.width_ratio) +
                          "," + ratio_text(mark.height_ratio)));
}

constexpr Entry kWatermarkFilters[] = {
    {"watermark", parse_watermark},
};

}  // namespace

std::span<const Entry> watermark_filters() {
  return kWatermarkFilters;
}

}  // namespace thimble::transform::filters
