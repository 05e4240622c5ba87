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
#include "transform/resize.h"
#include "transform/smart.h"
#include "transform/trim.h"

namespace thimble::transform {
namespace {

using Clock = std::chrono::steady_clock;

Status past_deadline() {
  return {Code::kOverloaded, "the thumbnail took longer than the request deadline"};
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

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
    if (deadline.passed()) return past_deadline();
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

// debug/: like Thumbor, no transform at all: the (trimmed, manually cropped) source with a red
// box around each focal point that would decide the crop, shrunk to fit the output limit.
Result<Thumbnail> render_debug(std::span<const std::uint8_t> original, const ThumbnailSpec& spec,
                               const RenderSettings& s, const RenderRequest& request) {
  Thumbnail thumb;
  Result<ImageInfo> info = inspect(original, s, request.header);
  if (!info.ok()) return info.status();
  thumb.source = *info;
  Result<cv::Mat> decoded = decode_image(original, *info, 1, decode_budget(s, request.deadline));
  if (!decoded.ok()) return decoded.status();
  cv::Mat img = *decoded;
  try {
    apply_orientation(img, info->orientation);
    ThumbnailSpec planned_spec = spec;
    if (spec.trim) {
      const Rect t = trim_box(img, *spec.trim).value_or(Rect{0, 0, img.cols, img.rows});
      img = img(cv::Rect(t.x, t.y, t.width, t.height));
      planned_spec = shift_crop(spec, t);
    }
    const Size shown{img.cols, img.rows};
    std::vector<FocalPoint> points = spec.smart
                                         ? find_focal_points(img, 1, shown, s, request.focal_cache)
                                         : std::vector<FocalPoint>{};
    for (const FocalPoint& p : explicit_focal_points(spec)) points.push_back(p);
    Result<Plan> plan = make_plan(planned_spec, shown, std::max(shown.width, shown.height), points);
    if (!plan.ok()) return plan.status();
    const Rect base = plan->manual_crop.value_or(Rect{0, 0, shown.width, shown.height});
    img = img(cv::Rect(base.x, base.y, base.width, base.height)).clone();
    thumb.focal_points = effective_focal_points(planned_spec, base, points);
    for (const FocalPoint& p : thumb.focal_points) {
      const int w = p.width <= 1 ? 10 : p.width, h = p.height <= 1 ? 10 : p.height;
      cv::rectangle(img, cv::Rect(p.x - w / 2, p.y - h / 2, w, h), cv::Scalar(0, 0, 255, 255),
                    std::max(2, std::max(img.cols, img.rows) / 400));
    }
    const int longest = std::max(img.cols, img.rows);
    if (longest > s.max_output_dimension) {
      const double f = static_cast<double>(s.max_output_dimension) / longest;
      cv::Mat smaller;
      resize_image(img, smaller,
                   cv::Size(std::max(1, static_cast<int>(img.cols * f)),
                            std::max(1, static_cast<int>(img.rows * f))));
      img = smaller;
    }
  } catch (const cv::Exception&) {
    return Status(Code::kInternal, "the image could not be drawn on");
  }
  thumb.region = {0, 0, img.cols, img.rows};
  thumb.format = output_format(spec, info->format, request.negotiated);
  Result<std::string> bytes = encode(img, thumb.format, spec, s);
  if (!bytes.ok()) return bytes.status();
  thumb.bytes = std::move(bytes).value();
  thumb.size = {img.cols, img.rows};
  return thumb;
}

}  // namespace

Result<Thumbnail> render(std::span<const std::uint8_t> original, const ThumbnailSpec& spec,
                         const RenderSettings& s, const RenderRequest& request) {
  if (spec.debug) return render_debug(original, spec, s, request);
  auto late = [&] { return request.deadline.passed(); };
  Thumbnail thumb;
  auto start = Clock::now();
  Result<ImageInfo> info = inspect(original, s, request.header);
  if (!info.ok()) return info.status();
  thumb.source = *info;
  Size shown =
      info->swaps_axes() ? Size{info->height, info->width} : Size{info->width, info->height};
  // Without trim the geometry is known from the header, before decoding (so the decode can be
  // shrunk). trim() needs the pixels first: it is planned after the decode. smart/ only moves
  // the crop, never resizes it, so the alignment plan's shrink factor holds for it too.
  std::optional<Plan> plan;
  if (!spec.trim) {
    Result<Plan> planned =
        make_plan(spec, shown, s.max_output_dimension, explicit_focal_points(spec));
    if (!planned.ok()) return planned.status();
    plan = *planned;
  }
  thumb.times.sniff_ms = ms_since(start);
  if (late()) return past_deadline();

  // Decode once, at reduced scale when a JPEG is much larger than what survives of it.
  start = Clock::now();
  thumb.shrink_on_load = plan && info->format == ImageFormat::kJpeg
                             ? shrink_on_load(plan->region.size(), plan->target, info->dc_eighth)
                             : 1;
  Result<cv::Mat> decoded =
      decode_image(original, *info, thumb.shrink_on_load, decode_budget(s, request.deadline));
  if (!decoded.ok()) return decoded.status();
  thumb.times.decode_ms = ms_since(start);
  if (late()) return past_deadline();

  start = Clock::now();
  cv::Mat img = *decoded;
  int orientation = info->orientation;  // still to apply to `img`
  try {
    ThumbnailSpec planned_spec = spec;
    if (spec.trim) {
      apply_orientation(img, orientation);
      orientation = 1;
      const Rect trimmed = trim_box(img, *spec.trim).value_or(Rect{0, 0, img.cols, img.rows});
      img = img(cv::Rect(trimmed.x, trimmed.y, trimmed.width, trimmed.height));
      shown = trimmed.size();
      planned_spec = shift_crop(spec, trimmed);
    }
    if (spec.smart) {
      const auto smart_start = Clock::now();
      FocalPointCache cache = request.focal_cache;
      if (spec.trim) cache.key += "|" + spec.trim->text();  // points of the trimmed image
      thumb.focal_points = find_focal_points(img, orientation, shown, s, cache);
      thumb.times.smart_ms = ms_since(smart_start);
      if (late()) return past_deadline();
    }
    for (const FocalPoint& p : explicit_focal_points(spec)) thumb.focal_points.push_back(p);
    if (spec.trim || spec.smart) {
      Result<Plan> planned =
          make_plan(planned_spec, shown, s.max_output_dimension, thumb.focal_points);
      if (!planned.ok()) return planned.status();
      plan = *planned;
    }
    thumb.region = plan->region;
    // Region of interest, in the decoded image's (stored, possibly reduced) coordinates.
    const bool swaps = orientation >= 5;
    const Rect stored = to_stored(plan->region, shown, orientation);
    const double fx = static_cast<double>(img.cols) / (swaps ? shown.height : shown.width);
    const double fy = static_cast<double>(img.rows) / (swaps ? shown.width : shown.height);
    int x0 = std::clamp(static_cast<int>(std::lround(stored.x * fx)), 0, img.cols - 1);
    int y0 = std::clamp(static_cast<int>(std::lround(stored.y * fy)), 0, img.rows - 1);
    int x1 =
        std::clamp(static_cast<int>(std::lround((stored.x + stored.width) * fx)), x0 + 1, img.cols);
    int y1 = std::clamp(static_cast<int>(std::lround((stored.y + stored.height) * fy)), y0 + 1,
                        img.rows);
    img = img(cv::Range(y0, y1), cv::Range(x0, x1));

    // Resize in stored orientation, then orient the (small) result.
    cv::Size target(plan->target.width, plan->target.height);
    if (swaps) std::swap(target.width, target.height);
    if (img.size() != target) {
      cv::Mat resized;
      resize_image(img, resized, target);
      img = resized;
    }
    apply_orientation(img, orientation);
    if (plan->flip_horizontal && plan->flip_vertical) {
      cv::flip(img, img, -1);
    } else if (plan->flip_horizontal || plan->flip_vertical) {
      cv::flip(img, img, plan->flip_horizontal ? 1 : 0);
    }
    if (late()) return past_deadline();
    Result<WatermarkImages> marks =
        decode_watermarks(spec, request.watermarks, s, request.deadline);
    if (!marks.ok()) return marks.status();
    apply_pixel_filters(img, spec.filters, plan->box.width, plan->box.height, &*marks);
    if (!img.isContinuous()) img = img.clone();
  } catch (const cv::Exception&) {
    return Status(Code::kInternal, "the image could not be transformed");
  }
  thumb.times.transform_ms = ms_since(start);
  if (late()) return past_deadline();

  start = Clock::now();
  thumb.format = output_format(spec, info->format, request.negotiated);
  Result<std::string> bytes = encode(img, thumb.format, spec, s);
  if (!bytes.ok()) return bytes.status();
  thumb.bytes = std::move(bytes).value();
  if (spec.max_bytes) {
    Status fitted = fit_max_bytes(img, thumb.format, spec, s, request.deadline, thumb.bytes);
    if (!fitted.ok()) return fitted;
  }
  thumb.size = {img.cols, img.rows};
  thumb.times.encode_ms = ms_since(start);
  return thumb;
}

void use_one_thread_per_render() {
  cv::setNumThreads(1);
}

}  // namespace thimble::transform
