// Background filters: fill, background_color.
#include <opencv2/imgproc.hpp>

#include "transform/filters/family.h"
#include "transform/filters/pixels.h"

namespace thimble::transform::filters {
namespace {

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

// fill(colour[, fill_transparent]): pads the result to the requested box, centred.
struct Fill final : FilterEffect {
  enum class Kind : std::uint8_t { kColour, kAuto, kBlur } kind = Kind::kColour;
  Colour colour;                  // for kColour (`transparent` has alpha 0)
  bool fill_transparent = false;  // also paint the image's own transparent pixels
  void apply(cv::Mat& image, const FilterCanvas& target) const override {
    const cv::Size canvas_size(target.box_width > 0 ? target.box_width : image.cols,
                               target.box_height > 0 ? target.box_height : image.rows);
    cv::Mat canvas;
    if (kind == Kind::kBlur) {
      // The image itself, blurred and stretched over the box.
      cv::Mat blurred;
      cv::GaussianBlur(image, blurred, cv::Size(0, 0), 50, 50, cv::BORDER_REPLICATE);
      cv::resize(blurred, canvas, canvas_size, 0, 0, cv::INTER_LINEAR);
      if (canvas.channels() == 3) cv::cvtColor(canvas, canvas, cv::COLOR_BGR2BGRA);
    } else {
      const Colour paint = kind == Kind::kAuto ? median_colour(image) : colour;
      canvas = cv::Mat(canvas_size, CV_8UC4, bgra(paint));
    }
    // Centred, with Python's floor division for the offset.
    auto offset = [](int outer, int inner) {
      int d = outer - inner;
      return d >= 0 ? d / 2 : -((-d + 1) / 2);
    };
    paste(canvas, image, {offset(canvas.cols, image.cols), offset(canvas.rows, image.rows)},
          fill_transparent);
    image = canvas;
    drop_opaque_alpha(image);
  }
  std::pair<int, int> size_after(std::pair<int, int> size, std::pair<int, int> box) const override {
    if (box.first > 0) size.first = box.first;
    if (box.second > 0) size.second = box.second;
    return size;
  }
  bool pads_to_box() const override { return true; }
  std::optional<Colour> flatten_colour() const override {
    if (kind == Kind::kColour && colour.a == 255) return colour;
    return std::nullopt;
  }
};

Result<PixelFilter> parse_fill(const Call& call) {
  const auto& a = call.values;
  // Thumbor's colour argument is `[\w]+`: a name, hex digits, auto, blur or transparent.
  const char* expected =
      "a colour (name, hex, transparent, auto or blur) and an optional true/false";
  if (a.empty() || a.size() > 2) return call.fail(expected);
  Fill fill;
  auto transparent = a.size() == 2 ? boolean_argument(a[1]) : std::optional<bool>(false);
  if (!transparent) return call.fail(expected);
  fill.fill_transparent = *transparent;
  std::string colour_text;
  if (a[0] == "auto" || a[0] == "blur") {
    fill.kind = a[0] == "auto" ? Fill::Kind::kAuto : Fill::Kind::kBlur;
    colour_text = std::string(a[0]);
  } else {
    auto colour = parse_colour(a[0]);
    if (!colour || a[0].front() == '#') return call.fail(expected);
    fill.colour = *colour;
    char hex[10];
    std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", colour->r, colour->g, colour->b, colour->a);
    colour_text = hex;
  }
  const bool also_transparent = fill.fill_transparent;
  return call.made(std::move(fill), colour_text + "," + (also_transparent ? "true" : "false"));
}

// background_color(colour): composites a transparent image onto the colour.
struct BackgroundColour final : FilterEffect {
  explicit BackgroundColour(Colour c) : colour(c) {}
  Colour colour;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    if (image.channels() != 4) return;
    cv::Mat canvas(image.size(), CV_8UC4, bgra(colour));
    paste(canvas, image, {0, 0}, /*blend=*/true);
    image = canvas;
    drop_opaque_alpha(image);
  }
  std::optional<Colour> flatten_colour() const override { return colour; }
};

Result<PixelFilter> parse_background_color(const Call& call) {
  const auto& a = call.values;
  auto colour = a.size() == 1 ? parse_colour(a[0]) : std::nullopt;
  if (!colour || a[0].front() == '#' || colour->a != 255) {
    return call.fail("an opaque colour: a name such as white or hex digits such as ffffff");
  }
  return call.made(BackgroundColour(*colour), hex_text({colour->r, colour->g, colour->b}));
}

constexpr Entry kBackgroundFilters[] = {
    {"fill", parse_fill},
    {"background_color", parse_background_color},
};

}  // namespace

std::span<const Entry> background_filters() {
  return kBackgroundFilters;
}

}  // namespace thimble::transform::filters
