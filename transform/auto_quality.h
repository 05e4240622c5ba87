// Automatic quality (`output.quality: auto`, `filters:quality(auto)`, a Thimble extension): the
// lowest encoder quality whose thumbnail still looks like the unencoded one. Each try encodes the
// small result and decodes it again (never the original), and the perceptual score is SSIM (Wang,
// Bovik, Sheikh and Simoncelli, 2004: an 11x11 Gaussian window of sigma 1.5, the usual constants)
// on luma, averaged over the image. A photo that compresses easily goes lower than the fixed
// quality would take it; a detailed one goes higher, so the quality seen is the same everywhere.
//
// Internal to transform/. Thread-safe: no shared state.
#pragma once

#include <opencv2/core.hpp>
#include <string>

#include "conf/base/deadline.h"
#include "conf/base/status.h"
#include "transform/pipeline.h"

namespace thimble::transform {

// Encodes per try at most: a bisection of [auto_quality_min, auto_quality_max] takes five tries
// to come within two quality steps of the answer.
inline constexpr int kAutoQualityTries = 5;

// Mean SSIM of the luma of two 8-bit images of one size (grey, BGR or BGRA; alpha is ignored):
// 1 for identical images, lower as they differ.
double luma_ssim(const cv::Mat& a, const cv::Mat& b);

// Whether `format` is encoded with an automatic quality under `spec` and `settings`: the URL asks
// quality(auto), or `output.quality` is `auto` and the URL names no quality; only the lossy
// formats (JPEG, WebP, AVIF) have a quality to choose.
bool wants_auto_quality(const ThumbnailSpec& spec, const RenderSettings& settings,
                        ImageFormat format);

struct QualityChoice {
  std::string bytes;
  int quality = 0;
  double ssim = 0;  // of `bytes` against the unencoded image
  int tries = 0;    // encodes made to choose (the final encode included)
};

// `image` (as encode_image() takes it, flattened or bled in place) encoded as `format` at the
// lowest quality in [settings.auto_quality_min, settings.auto_quality_max] whose decoded result
// scores at least settings.auto_quality_ssim; the highest quality when none does. A JPEG is
// searched with baseline encodes (the same pixels as progressive ones) and encoded once more as
// configured. Failure: Code::kInternal, or the deadline passed between tries.
Result<QualityChoice> encode_auto_quality(cv::Mat& image, ImageFormat format,
                                          const ThumbnailSpec& spec, const RenderSettings& settings,
                                          const Deadline& deadline);

}  // namespace thimble::transform
