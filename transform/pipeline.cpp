#include "transform/pipeline.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "transform/decode.h"
#include "transform/filters.h"
#include "transform/icc.h"
#include "transform/render_steps.h"
#include "transform/resize.h"
#include "transform/smart.h"
#include "transform/trim.h"

namespace thimble::transform {
namespace {

// Composites BGRA onto an opaque background colour (JPEG has no alpha).
void flatten(cv::Mat& img, cv::Scalar background) {
  if (img.channels() != 4) return;
  cv::Mat out(img.size(), CV_8UC3);
  img.forEach<cv::Vec4b>([&](const cv::Vec4b& p, const int* pos) {
    const int a = p[3];
    cv::Vec3b& o = out.at<cv::Vec3b>(pos[0], pos[1]);
    for (int c = 0; c < 3; ++c) {
      o[c] = static_cast<std::uint8_t>(
          (p[c] * a + static_cast<int>(background[c]) * (255 - a) + 127) / 255);
    }
  });
  img = out;
}

// Lossy WebP keeps colour at half resolution (4:2:0): a visible edge pixel shares its chroma
// with its transparent neighbours, whose colour is black once unpremultiplied, so edges came out
// darker. Transparent pixels near visible ones take their alpha-weighted average colour instead
// (they stay invisible), so the shared chroma is the edge's own.
void bleed_into_transparent(cv::Mat& img) {
  if (img.channels() != 4) return;
  cv::Mat alpha;
  cv::extractChannel(img, alpha, 3);
  if (cv::countNonZero(alpha) == static_cast<int>(alpha.total())) return;
  cv::Mat weight;
  alpha.convertTo(weight, CV_32F, 1.0 / 255);
  std::vector<cv::Mat> planes;
  cv::split(img, planes);
  const cv::Size reach(5, 5);  // beyond a 2x2 chroma block and the encoder's filtering
  std::array<cv::Mat, 3> sums;
  for (int c = 0; c < 3; ++c) {
    planes[static_cast<std::size_t>(c)].convertTo(sums[static_cast<std::size_t>(c)], CV_32F);
    sums[static_cast<std::size_t>(c)] = sums[static_cast<std::size_t>(c)].mul(weight);
    cv::blur(sums[static_cast<std::size_t>(c)], sums[static_cast<std::size_t>(c)], reach);
  }
  cv::Mat weights;
  cv::blur(weight, weights, reach);
  img.forEach<cv::Vec4b>([&](cv::Vec4b& p, const int* pos) {
    const float w = weights.at<float>(pos[0], pos[1]);
    if (p[3] != 0 || w <= 0) return;
    for (int c = 0; c < 3; ++c) {
      p[c] = cv::saturate_cast<std::uint8_t>(
          sums[static_cast<std::size_t>(c)].at<float>(pos[0], pos[1]) / w);
    }
  });
}

// `quality` overrides the URL's and the configured quality (used by max_bytes()).
Result<std::string> encode(cv::Mat& img, ImageFormat format, const ThumbnailSpec& spec,
                           const RenderSettings& s, std::optional<int> quality = std::nullopt) {
  std::vector<int> params;
  const char* extension = ".jpg";
  switch (format) {
    case ImageFormat::kJpeg:
      flatten(img, [&] {
        const Colour c = flatten_colour(spec.filters);
        return cv::Scalar(c.b, c.g, c.r);
      }());
      params = {cv::IMWRITE_JPEG_QUALITY,
                std::max(1, quality.value_or(spec.quality.value_or(s.jpeg_quality))),
                cv::IMWRITE_JPEG_PROGRESSIVE, s.jpeg_progressive ? 1 : 0};
      break;
    case ImageFormat::kWebp:
      extension = ".webp";
      bleed_into_transparent(img);
      params = {cv::IMWRITE_WEBP_QUALITY,
                std::max(1, quality.value_or(spec.quality.value_or(s.webp_quality)))};
      break;
    case ImageFormat::kPng:
    case ImageFormat::kGif:
      extension = ".png";
      params = {cv::IMWRITE_PNG_COMPRESSION, s.png_compression};
      break;
  }
  std::vector<std::uint8_t> out;
  try {
    if (!cv::imencode(extension, img, out, params)) {
      return Status(Code::kInternal, "the thumbnail could not be encoded");
    }
  } catch (const cv::Exception&) {
    return Status(Code::kInternal, "the thumbnail could not be encoded");
  }
  return std::string(out.begin(), out.end());
}

// The watermark images `spec` names, decoded like any original and within the same limits.
Result<WatermarkImages> decode_watermarks(const ThumbnailSpec& spec,
                                          const WatermarkSources& watermarks,
                                          const RenderSettings& s, const Deadline& deadline) {
  WatermarkImages marks;
  for (const std::string& key : watermark_keys(spec.filters)) {
    auto found = watermarks.find(key);
    if (found == watermarks.end()) {
      return Status(Code::kBadRequest, "watermark image '" + key + "' is not available");
    }
    const auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(found->second.data()),
                                 found->second.size());
    Result<ImageInfo> info = inspect(bytes, s);
    Result<cv::Mat> mark = info.ok() ? decode_image(bytes, *info, 1, decode_budget(s, deadline))
                                     : Result<cv::Mat>(info.status());
    if (!mark.ok()) {
      return Status(Code::kBadRequest, "watermark image '" + key + "': " + mark.status().message());
    }
    apply_orientation(*mark, info->orientation);
    if (mark->channels() == 3) cv::cvtColor(*mark, *mark, cv::COLOR_BGR2BGRA);
    marks.emplace(key, *mark);
  }
  return marks;
}

// max_bytes(): Thumbor's search for a JPEG/WebP quality whose encode fits. Lower the quality by a
// quarter until it fits (giving up below 10 and keeping the first encode), then raise it by a
// tenth while it still fits, never above the quality asked for. PNG is left as it is.
Status fit_max_bytes(cv::Mat& img, ImageFormat format, const ThumbnailSpec& spec,
                     const RenderSettings& s, const Deadline& deadline, std::string& bytes) {
  const auto limit = static_cast<std::size_t>(*spec.max_bytes);
  if (bytes.size() <= limit || (format != ImageFormat::kJpeg && format != ImageFormat::kWebp)) {
    return Status::Ok();
  }
  const int start_quality =
      spec.quality.value_or(format == ImageFormat::kJpeg ? s.jpeg_quality : s.webp_quality);
  int quality = start_quality;
  std::optional<std::string> fitting;
  while (!fitting) {
    quality = static_cast<int>(quality * 0.75);
    if (quality < 10) break;
    if (deadline.passed()) return deadline_passed();
    Result<std::string> smaller = encode(img, format, spec, s, quality);
    if (!smaller.ok()) return smaller.status();
    if (smaller->size() <= limit) fitting = std::move(smaller).value();
  }
  while (fitting) {
    const int higher = static_cast<int>(quality * 1.1);
    if (higher >= start_quality || higher == quality || deadline.passed()) break;
    Result<std::string> larger = encode(img, format, spec, s, higher);
    if (!larger.ok()) return larger.status();
    if (larger->size() > limit) break;
    quality = higher;
    fitting = std::move(larger).value();
  }
  if (fitting) bytes = std::move(*fitting);
  return Status::Ok();
}

}  // namespace

ImageFormat output_format(const ThumbnailSpec& spec, ImageFormat source,
                          std::optional<ImageFormat> negotiated) {
  if (spec.format) return *spec.format;
  if (negotiated) return *negotiated;
  return can_encode(source) ? source : ImageFormat::kPng;
}

Result<ImageInfo> inspect(std::span<const std::uint8_t> original, const RenderSettings& s,
                          const std::optional<ImageInfo>& header) {
  if (original.size() > static_cast<std::size_t>(INT_MAX)) {
    return Status(Code::kTooLarge, "the source is too large");
  }
  Result<ImageInfo> info = header ? Result<ImageInfo>(*header) : sniff(original);
  if (!info.ok()) return info;
  if (info->format == ImageFormat::kGif) {
    return Status(Code::kUnsupportedMedia, "GIF sources are not supported");
  }
  if (info->animated) return Status(Code::kUnsupportedMedia, "animated images are not supported");
  if (info->width > s.max_source_dimension || info->height > s.max_source_dimension) {
    return Status(Code::kTooLarge, "the source is " + std::to_string(info->width) + "x" +
                                       std::to_string(info->height) + ", over the limit of " +
                                       std::to_string(s.max_source_dimension) + " per side");
  }
  if (static_cast<std::uint64_t>(info->width) * static_cast<std::uint64_t>(info->height) >
      s.max_source_pixels) {
    return Status(Code::kTooLarge, "the source has more pixels than the limit of " +
                                       std::to_string(s.max_source_pixels));
  }
  if (!s.respect_orientation) info->orientation = 1;
  return info;
}

std::vector<FocalPoint> find_focal_points(const cv::Mat& stored, int orientation, Size shown,
                                          const RenderSettings& settings,
                                          const FocalPointCache& cache) {
  if (cache.memory) {
    if (auto known = cache.memory->recall(cache.key)) return *known;
  }
  double scale = 1;
  const cv::Mat copy = detection_copy(stored, orientation, shown, scale);
  std::vector<FocalPoint> points = detect_focal_points(copy, scale, settings.face_cascade);
  if (cache.memory) cache.memory->remember(cache.key, points);
  return points;
}

namespace {

// The steps only render() takes, after the shared ones (render_steps.h).

// Cuts the plan's region out of the decoded image (stored orientation, possibly reduced).
Status crop(RenderContext& c) {
  const bool swaps = c.orientation >= 5;
  const Rect stored = to_stored(c.plan->region, c.shown, c.orientation);
  cv::Mat& img = c.image;
  const double fx = static_cast<double>(img.cols) / (swaps ? c.shown.height : c.shown.width);
  const double fy = static_cast<double>(img.rows) / (swaps ? c.shown.width : c.shown.height);
  int x0 = std::clamp(static_cast<int>(std::lround(stored.x * fx)), 0, img.cols - 1);
  int y0 = std::clamp(static_cast<int>(std::lround(stored.y * fy)), 0, img.rows - 1);
  int x1 =
      std::clamp(static_cast<int>(std::lround((stored.x + stored.width) * fx)), x0 + 1, img.cols);
  int y1 =
      std::clamp(static_cast<int>(std::lround((stored.y + stored.height) * fy)), y0 + 1, img.rows);
  img = img(cv::Range(y0, y1), cv::Range(x0, x1));
  return Status::Ok();
}

// Resizes in stored orientation: the (small) result is oriented after.
Status resize(RenderContext& c) {
  cv::Size target(c.plan->target.width, c.plan->target.height);
  if (c.orientation >= 5) std::swap(target.width, target.height);
  if (c.image.size() != target) {
    cv::Mat resized;
    resize_image(c.image, resized, target);
    c.image = resized;
  }
  return Status::Ok();
}

Status orient(RenderContext& c) {
  apply_orientation(c.image, c.orientation);
  c.orientation = 1;
  if (c.plan->flip_horizontal && c.plan->flip_vertical) {
    cv::flip(c.image, c.image, -1);
  } else if (c.plan->flip_horizontal || c.plan->flip_vertical) {
    cv::flip(c.image, c.image, c.plan->flip_horizontal ? 1 : 0);
  }
  return Status::Ok();
}

// The thumbnail's colours in sRGB, from the original's embedded profile (on the small image).
Status manage_colour(RenderContext& c) {
  if (c.settings.color_management != "srgb") return Status::Ok();
  std::optional<std::string> profile = embedded_icc_profile(c.original, c.info.format);
  if (!profile) return Status::Ok();
  if (std::string ignored = convert_to_srgb(c.image, *profile); !ignored.empty()) {
    c.thumb.notes.push_back(ignored + "; its colours are left as decoded");
  }
  return Status::Ok();
}

Status filter(RenderContext& c) {
  Result<WatermarkImages> marks =
      decode_watermarks(c.spec, c.request.watermarks, c.settings, c.request.deadline);
  if (!marks.ok()) return marks.status();
  apply_pixel_filters(c.image, c.spec.filters, c.plan->box.width, c.plan->box.height, &*marks);
  if (!c.image.isContinuous()) c.image = c.image.clone();
  return Status::Ok();
}

// Encodes (within max_bytes() when the URL asks).
Status encode_output(RenderContext& c) {
  Thumbnail& thumb = c.thumb;
  thumb.format = output_format(c.spec, c.info.format, c.request.negotiated);
  Result<std::string> bytes = encode(c.image, thumb.format, c.spec, c.settings);
  if (!bytes.ok()) return bytes.status();
  thumb.bytes = std::move(bytes).value();
  if (c.spec.max_bytes) {
    Status fitted =
        fit_max_bytes(c.image, thumb.format, c.spec, c.settings, c.request.deadline, thumb.bytes);
    if (!fitted.ok()) return fitted;
  }
  thumb.size = {c.image.cols, c.image.rows};
  return Status::Ok();
}

// debug/: like Thumbor, no transform at all: the (trimmed, manually cropped) source with a red
// box around each focal point that would decide the crop, shrunk to fit the output limit.
Status draw_focal_points(RenderContext& c) {
  const Rect base = c.plan->manual_crop.value_or(Rect{0, 0, c.shown.width, c.shown.height});
  cv::Mat& img = c.image;
  img = img(cv::Rect(base.x, base.y, base.width, base.height)).clone();
  c.thumb.focal_points = effective_focal_points(c.planned_spec, base, c.focal_points);
  for (const FocalPoint& p : c.thumb.focal_points) {
    const int w = p.width <= 1 ? 10 : p.width, h = p.height <= 1 ? 10 : p.height;
    cv::rectangle(img, cv::Rect(p.x - w / 2, p.y - h / 2, w, h), cv::Scalar(0, 0, 255, 255),
                  std::max(2, std::max(img.cols, img.rows) / 400));
  }
  const int longest = std::max(img.cols, img.rows);
  if (longest > c.settings.max_output_dimension) {
    const double f = static_cast<double>(c.settings.max_output_dimension) / longest;
    cv::Mat smaller;
    resize_image(img, smaller,
                 cv::Size(std::max(1, static_cast<int>(img.cols * f)),
                          std::max(1, static_cast<int>(img.rows * f))));
    img = smaller;
  }
  c.thumb.region = {0, 0, img.cols, img.rows};
  return Status::Ok();
}

Status encode_plain(RenderContext& c) {
  c.thumb.format = output_format(c.spec, c.info.format, c.request.negotiated);
  Result<std::string> bytes = encode(c.image, c.thumb.format, c.spec, c.settings);
  if (!bytes.ok()) return bytes.status();
  c.thumb.bytes = std::move(bytes).value();
  c.thumb.size = {c.image.cols, c.image.rows};
  return Status::Ok();
}

constexpr Step kThumbnailSteps[] = {
    {steps::inspect, &StageTimes::sniff_ms},    {steps::decode_for_plan, &StageTimes::decode_ms},
    {steps::trim, &StageTimes::transform_ms},   {steps::smart, &StageTimes::smart_ms},
    {steps::plan, &StageTimes::transform_ms},   {crop, &StageTimes::transform_ms},
    {resize, &StageTimes::transform_ms},        {orient, &StageTimes::transform_ms},
    {manage_colour, &StageTimes::transform_ms}, {filter, &StageTimes::transform_ms},
    {encode_output, &StageTimes::encode_ms},
};

constexpr Step kDebugSteps[] = {
    {steps::inspect, &StageTimes::sniff_ms},  {steps::decode_whole, &StageTimes::decode_ms},
    {steps::trim, &StageTimes::transform_ms}, {steps::smart, &StageTimes::smart_ms},
    {steps::plan, &StageTimes::transform_ms}, {draw_focal_points, &StageTimes::transform_ms},
    {encode_plain, &StageTimes::encode_ms},
};

}  // namespace

Result<Thumbnail> render(std::span<const std::uint8_t> original, const ThumbnailSpec& spec,
                         const RenderSettings& s, const RenderRequest& request) {
  RenderContext context(original, spec, s, request);
  if (spec.debug) {
    context.plan_unbounded = true;
    Status drawn = run_steps(context, kDebugSteps, "the image could not be drawn on");
    if (!drawn.ok()) return drawn;
    return std::move(context.thumb);
  }
  Status made = run_steps(context, kThumbnailSteps, "the image could not be transformed");
  if (!made.ok()) return made;
  context.thumb.focal_points = std::move(context.focal_points);
  return std::move(context.thumb);
}

void use_one_thread_per_render() {
  cv::setNumThreads(1);
}

}  // namespace thimble::transform
