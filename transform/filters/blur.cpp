// Blur and sharpen filters: blur, sharpen, convolution, noise.
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <random>

#include "transform/filters/family.h"
#include "transform/filters/pixels.h"

namespace thimble::transform::filters {
namespace {

// blur(radius[, sigma]): Gaussian, radius 0..150, sigma > 0 (the radius when not given).
struct Blur final : FilterEffect {
  Blur(int r, double s) : radius(r), sigma(s) {}
  int radius;
  double sigma;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    if (radius == 0) return;
    const int size = 2 * radius + 1;
    cv::GaussianBlur(image, image, cv::Size(size, size), sigma, sigma, cv::BORDER_REPLICATE);
  }
  Status within(const SpecLimits& limits, const std::string& canonical) const override {
    if (radius > limits.max_blur_radius) {
      return over_limit(canonical + ": the blur radius", limits.max_blur_radius);
    }
    return Status::Ok();
  }
};

Result<PixelFilter> parse_blur(const Call& call) {
  const auto& a = call.values;
  const char* expected = "a radius from 0 to 150 and an optional positive sigma";
  if (a.empty() || a.size() > 2) return call.fail(expected);
  const std::optional<int> radius = integer_argument(a[0]);
  const std::optional<double> sigma = a.size() == 2 ? decimal_argument(a[1]) : 0.0;
  if (!radius || *radius < 0 || *radius > 150 || !sigma || *sigma < 0) return call.fail(expected);
  const double s = *sigma == 0 ? *radius : *sigma;
  return call.made(Blur(*radius, s), std::to_string(*radius) + "," + decimal_text(s));
}

// convolution(matrix, columns[, normalise]): a kernel of odd sides up to 15x15.
struct Convolution final : FilterEffect {
  Convolution(std::vector<double> k, int c) : kernel(std::move(k)), columns(c) {}
  std::vector<double> kernel;  // row-major, normalised already when asked
  int columns;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    const int rows = static_cast<int>(kernel.size()) / columns;
    cv::Mat matrix(rows, columns, CV_64F, const_cast<double*>(kernel.data()));
    cv::Mat sums;
    cv::filter2D(image, sums, CV_64F, matrix, cv::Point(-1, -1), 0, cv::BORDER_REPLICATE);
    // Thumbor truncates each sum towards zero before clamping; so does Thimble.
    cv::Mat values = sums.reshape(1);
    values.forEach<double>([](double& v, const int*) { v = std::trunc(v); });
    sums.convertTo(image, CV_8U);
  }
  Status within(const SpecLimits& limits, const std::string&) const override {
    if (columns > limits.max_convolution_size ||
        std::cmp_greater(kernel.size() / static_cast<std::size_t>(columns),
                         limits.max_convolution_size)) {
      return over_limit("convolution(): the matrix side", limits.max_convolution_size);
    }
    return Status::Ok();
  }
};

Result<PixelFilter> parse_convolution(const Call& call) {
  const auto& a = call.values;
  const char* expected =
      "a ';'-separated matrix with an odd number of odd-length rows (at most 15x15), the "
      "number of columns and an optional true/false to normalise";
  if (a.size() < 2 || a.size() > 3) return call.fail(expected);
  auto columns = integer_argument(a[1]);
  auto normalize = a.size() == 3 ? boolean_argument(a[2]) : std::optional<bool>(true);
  std::vector<double> kernel;
  for (std::string_view rest = a[0]; kernel.size() <= 225;) {
    std::size_t semicolon = rest.find(';');
    auto v = decimal_argument(rest.substr(0, semicolon));
    if (!v) return call.fail(expected);
    kernel.push_back(*v);
    if (semicolon == std::string_view::npos) break;
    rest.remove_prefix(semicolon + 1);
  }
  if (!columns || !normalize || *columns < 1 || *columns > 15 || kernel.size() > 225 ||
      kernel.size() % static_cast<std::size_t>(*columns) != 0 || kernel.size() % 2 == 0 ||
      (kernel.size() / static_cast<std::size_t>(*columns)) % 2 == 0) {
    return call.fail(expected);
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
  const int side = *columns;
  return call.made(Convolution(std::move(kernel), side),
                   text + "," + std::to_string(side) + "," + (*normalize ? "true" : "false"));
}

// noise(amount): 0..100; seeded from the image size, so one URL always gives the same bytes.
struct Noise final : FilterEffect {
  explicit Noise(int a) : amount(a) {}
  int amount;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    if (amount == 0) return;
    std::mt19937 random(static_cast<std::uint32_t>(image.cols) * 65537u ^
                        static_cast<std::uint32_t>(image.rows));
    const int span = amount, half = amount >> 1;
    for_each_colour(image, [&](std::uint8_t* p) {
      const int delta = static_cast<int>(random() % static_cast<unsigned>(span)) - half;
      for (int c = 0; c < 3; ++c) p[c] = clamp_byte(p[c] + delta);
    });
  }
};

Result<PixelFilter> parse_noise(const Call& call) {
  auto v = integer_arguments(call.values, 1, 0, 100);
  if (!v) return call.fail("a whole number from 0 to 100");
  return call.made(Noise((*v)[0]), std::to_string((*v)[0]));
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

// sharpen(amount, radius, luminance_only): wavelet sharpening as Thumbor's (five levels of an
// a-trous decomposition; each level's detail amplified by amount*exp(-(level-radius)^2/1.5)+1).
struct Sharpen final : FilterEffect {
  Sharpen(double a, double r, bool l) : amount(a), radius(r), luminance_only(l) {}
  double amount, radius;
  bool luminance_only;
  void apply(cv::Mat& image, const FilterCanvas&) const override {
    cv::Mat colour;
    if (image.channels() == 4) {
      cv::cvtColor(image, colour, cv::COLOR_BGRA2BGR);
    } else {
      colour = image;
    }
    cv::Mat planes_source;
    if (luminance_only) {
      cv::cvtColor(colour, planes_source, cv::COLOR_BGR2YCrCb);
    } else {
      planes_source = colour;
    }
    cv::Mat floating;
    planes_source.convertTo(floating, CV_32F, 1.0 / 255.0);
    std::vector<cv::Mat> planes;
    cv::split(floating, planes);
    for (std::size_t c = 0; c < planes.size(); ++c) {
      if (luminance_only && c != 0) continue;  // Y only
      wavelet_sharpen(planes[c], amount, radius);
    }
    cv::merge(planes, floating);
    cv::Mat sharpened;
    floating.convertTo(sharpened, CV_8U, 255.0);
    if (luminance_only) cv::cvtColor(sharpened, sharpened, cv::COLOR_YCrCb2BGR);
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
};

Result<PixelFilter> parse_sharpen(const Call& call) {
  const auto& a = call.values;
  const char* expected =
      "an amount (0 to 100), a radius (0 to 10) and true/false for luminance only";
  if (a.size() != 3) return call.fail(expected);
  const auto amount = decimal_argument(a[0]);
  const auto radius = decimal_argument(a[1]);
  const auto luminance = boolean_argument(a[2]);
  if (!amount || !radius || !luminance || *amount < 0 || *amount > 100 || *radius < 0 ||
      *radius > 10) {
    return call.fail(expected);
  }
  const bool luminance_only = *luminance;
  return call.made(Sharpen(*amount, *radius, luminance_only),
                   decimal_text(*amount) + "," + decimal_text(*radius) + "," +
                       (luminance_only ? "true" : "false"));
}

constexpr Entry kBlurFilters[] = {
    {"blur", parse_blur},
    {"sharpen", parse_sharpen},
    {"convolution", parse_convolution},
    {"noise", parse_noise},
};

}  // namespace

std::span<const Entry> blur_filters() {
  return kBlurFilters;
}

}  // namespace thimble::transform::filters
