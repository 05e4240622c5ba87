#include "transform/auto_quality.h"

#include <algorithm>
#include <opencv2/imgproc.hpp>
#include <optional>

#include "transform/decode.h"
#include "transform/encode.h"

namespace thimble::transform {
namespace {

cv::Mat luma_of(const cv::Mat& image) {
  cv::Mat grey = image;
  if (image.channels() == 3) cv::cvtColor(image, grey, cv::COLOR_BGR2GRAY);
  if (image.channels() == 4) cv::cvtColor(image, grey, cv::COLOR_BGRA2GRAY);
  cv::Mat luma;
  grey.convertTo(luma, CV_32F);
  return luma;
}

cv::Mat gaussian(const cv::Mat& m) {
  cv::Mat out;
  cv::GaussianBlur(m, out, cv::Size(11, 11), 1.5);
  return out;
}

constexpr double kC1 = (0.01 * 255) * (0.01 * 255), kC2 = (0.03 * 255) * (0.03 * 255);

// The unencoded image's half of SSIM, computed once for every try of a search.
class SsimReference {
 public:
  explicit SsimReference(const cv::Mat& reference)
      : size_(reference.size()), y_(luma_of(reference)), my_(gaussian(y_)), my2_(my_.mul(my_)) {
    vy_ = gaussian(y_.mul(y_)) - my2_;
  }

  double score(const cv::Mat& image) const {
    if (image.size() != size_ || image.empty()) return 0;
    const cv::Mat x = luma_of(image);
    const cv::Mat mx = gaussian(x);
    const cv::Mat mx2 = mx.mul(mx), mxy = mx.mul(my_);
    const cv::Mat vx = gaussian(x.mul(x)) - mx2;
    const cv::Mat cxy = gaussian(x.mul(y_)) - mxy;
    cv::Mat numerator = (2 * mxy + kC1).mul(2 * cxy + kC2);
    cv::Mat denominator = (mx2 + my2_ + kC1).mul(vx + vy_ + kC2);
    cv::Mat map;
    cv::divide(numerator, denominator, map);
    return cv::mean(map)[0];
  }

 private:
  cv::Size size_;
  cv::Mat y_, my_, my2_, vy_;
};

// The score of `bytes` (an encode of the reference) decoded by Thimble's own decoder.
Result<double> score(const std::string& bytes, const SsimReference& reference) {
  const std::span<const std::uint8_t> data(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                           bytes.size());
  Result<ImageInfo> info = sniff(data);
  if (!info.ok()) return Status(Code::kInternal, "the thumbnail could not be encoded");
  Result<cv::Mat> decoded = decode_image(data, *info, 1);
  if (!decoded.ok()) return Status(Code::kInternal, "the thumbnail could not be encoded");
  return reference.score(*decoded);
}

}  // namespace

double luma_ssim(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.empty()) return 0;
  return SsimReference(b).score(a);
}

bool wants_auto_quality(const ThumbnailSpec& spec, const RenderSettings& settings,
                        ImageFormat format) {
  if (format != ImageFormat::kJpeg && format != ImageFormat::kWebp &&
      format != ImageFormat::kAvif) {
    return false;
  }
  return spec.auto_quality || (settings.quality == "auto" && !spec.quality);
}

Result<QualityChoice> encode_auto_quality(cv::Mat& image, ImageFormat format,
                                          const ThumbnailSpec& spec, const RenderSettings& settings,
                                          const Deadline& deadline) {
  const int lowest = std::clamp(settings.auto_quality_min, 1, 100);
  const int highest = std::clamp(settings.auto_quality_max, lowest, 100);
  RenderSettings trial = settings;
  trial.jpeg_progressive = false;  // the same coefficients, so the same pixels, in a third the time
  QualityChoice chosen;
  std::optional<QualityChoice> at_highest;  // the highest quality's try, if the search made it
  std::optional<SsimReference> reference;   // made on the first try: encode_image() prepares
  bool reached = false;
  int tries = 0;
  auto attempt = [&](int quality) -> Result<QualityChoice> {
    if (deadline.passed()) return deadline_passed();
    Result<std::string> bytes = encode_image(image, format, spec, trial, quality);
    ++tries;
    if (!bytes.ok()) return bytes.status();
    // The image as encoded: encode_image() flattened (JPEG) or bled (WebP) it on the first try.
    if (!reference) reference.emplace(image);
    Result<double> ssim = score(*bytes, *reference);
    if (!ssim.ok()) return ssim.status();
    return QualityChoice{std::move(bytes).value(), quality, *ssim, 0};
  };
  for (int lo = lowest, hi = highest; lo <= hi && tries < kAutoQualityTries;) {
    const int quality = lo + (hi - lo) / 2;
    Result<QualityChoice> tried = attempt(quality);
    if (!tried.ok()) return tried.status();
    if (tried->ssim >= settings.auto_quality_ssim) {
      chosen = std::move(tried).value();
      reached = true;
      hi = quality - 1;
    } else {
      if (quality == highest) at_highest = std::move(tried).value();
      lo = quality + 1;
    }
  }
  if (!reached) {  // the highest quality, encoded once
    if (!at_highest) {
      Result<QualityChoice> top = attempt(highest);
      if (!top.ok()) return top.status();
      at_highest = std::move(top).value();
    }
    chosen = std::move(*at_highest);
  }
  if (format == ImageFormat::kJpeg && settings.jpeg_progressive) {
    if (deadline.passed()) return deadline_passed();
    Result<std::string> final_bytes = encode_image(image, format, spec, settings, chosen.quality);
    ++tries;
    if (!final_bytes.ok()) return final_bytes.status();
    chosen.bytes = std::move(final_bytes).value();
  }
  chosen.tries = tries;
  return chosen;
}

}  // namespace thimble::transform
