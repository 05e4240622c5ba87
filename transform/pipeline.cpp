#include "transform/pipeline.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "transform/auto_quality.h"
#include "transform/decode.h"
#include "transform/encode.h"
#include "transform/filters.h"
#include "transform/icc.h"
#include "transform/render_steps.h"
#include "transform/resize.h"
#include "transform/smart.h"
#include "transform/trim.h"

namespace thimble::transform {
namespace {

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
                     const RenderSettings& s, const Deadline& deadline, std::optional<int> chosen,
                     std::string& bytes) {
  const auto limit = static_cast<std::size_t>(*spec.max_bytes);
  if (bytes.size() <= limit || (format != ImageFormat::kJpeg && format != ImageFormat::kWebp)) {
    return Status::Ok();
  }
  const int start_quality = chosen.value_or(
      spec.quality.value_or(format == ImageFormat::kJpeg ? s.jpeg_quality : s.webp_quality));
  int quality = start_quality;
  std::optional<std::string> fitting;
  while (!fitting) {
    quality = static_cast<int>(quality * 0.75);
    if (quality < 10) break;
    if (deadline.passed()) return deadline_passed();
    Result<std::string> smaller = encode_image(img, format, spec, s, quality);
    if (!smaller.ok()) return smaller.status();
    if (smaller->size() <= limit) fitting = std::move(smaller).value();
  }
  while (fitting) {
    const int higher = static_cast<int>(quality * 1.1);
    if (higher >= start_quality || higher == quality || deadline.passed()) break;
    Result<std::string> larger = encode_image(img, format, spec, s, higher);
    if (!larger.ok()) return larger.status();
    if (larger->size() > limit) break;
    quality = higher;
    fitting = std::move(larger).value();
  }
  if (fitting) bytes = std::move(*fitting);
  return Status::Ok();
}

}  // namespace

ImageFormat output_format(const ThumbnailSpec& spec, const ImageInfo& source,
                          std::optional<ImageFormat> negotiated) {
  if (spec.format) return *spec.format;
  // AVIF negotiated for an animation: animated WebP (every browser that reads AVIF reads it).
  if (negotiated && source.animated && !animates(*negotiated)) return ImageFormat::kWebp;
  if (negotiated) return *negotiated;
  // HEIC and AVIF originals are served as JPEG (PNG with alpha) unless asked: what every browser
  // shows. The others keep their format.
  if (source.format != ImageFormat::kHeic && source.format != ImageFormat::kAvif) {
    return source.format;
  }
  return source.has_alpha ? ImageFormat::kPng : ImageFormat::kJpeg;
}

Result<ImageInfo> inspect(std::span<const std::uint8_t> original, const RenderSettings& s,
                          const std::optional<ImageInfo>& header) {
  if (original.size() > static_cast<std::size_t>(INT_MAX)) {
    return Status(Code::kTooLarge, "the source is too large");
  }
  Result<ImageInfo> info = header ? Result<ImageInfo>(*header) : sniff(original);
  if (!info.ok()) return info;
  if (info->animated && !has_frames(*info)) {
    return Status(Code::kUnsupportedMedia, "animated PNG is not supported");
  }
  if (info->frames > s.max_frames) {
    return Status(Code::kTooLarge, "the animation has " + std::to_string(info->frames) +
                                       " frames, over the limit of " +
                                       std::to_string(s.max_frames));
  }
  if (info->frames > 1 && static_cast<std::uint64_t>(info->width) *
                                  static_cast<std::uint64_t>(info->height) *
                                  static_cast<std::uint64_t>(info->frames) >
                              s.max_animation_pixels) {
    return Status(Code::kTooLarge,
                  "the animation has more pixels (over all its frames) than "
                  "the limit of " +
                      std::to_string(s.max_animation_pixels));
  }
  // A HEIF grid's tiles may reach past the image: the limits hold for what is decoded.
  const int width = std::max(info->width, info->coded_width);
  const int height = std::max(info->height, info->coded_height);
  if (width > s.max_source_dimension || height > s.max_source_dimension) {
    return Status(Code::kTooLarge, "the source is " + std::to_string(width) + "x" +
                                       std::to_string(height) + ", over the limit of " +
                                       std::to_string(s.max_source_dimension) + " per side");
  }
  if (static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height) >
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
  // A CMYK JPEG's profile was applied while decoding (the only place its pixels are CMYK).
  if (c.settings.color_management != "srgb" || c.info.cmyk) return Status::Ok();
  if (!c.profile) c.profile = embedded_icc_profile(c.original, c.info.format);
  if (!*c.profile) return Status::Ok();
  if (std::string ignored = convert_to_srgb(c.image, **c.profile, c.info.grey); !ignored.empty()) {
    // Said once, not for every frame.
    c.thumb.notes.push_back(ignored + "; its colours are left as decoded");
    c.profile.emplace(std::nullopt);
  }
  return Status::Ok();
}

Status filter(RenderContext& c) {
  if (!c.marks) {
    Result<WatermarkImages> marks =
        decode_watermarks(c.spec, c.request.watermarks, c.settings, c.request.deadline);
    if (!marks.ok()) return marks.status();
    c.marks = std::move(marks).value();
  }
  apply_pixel_filters(c.image, c.spec.filters, c.plan->box.width, c.plan->box.height, &*c.marks);
  if (!c.image.isContinuous()) c.image = c.image.clone();
  return Status::Ok();
}

// What is done to every frame of an animation, as to the first (in kThumbnailSteps).
constexpr Step kFrameSteps[] = {
    {crop, &StageTimes::transform_ms},   {resize, &StageTimes::transform_ms},
    {orient, &StageTimes::transform_ms}, {manage_colour, &StageTimes::transform_ms},
    {filter, &StageTimes::transform_ms},
};

// An animated original written as an animation: its other frames, each read, cut, resized and
// filtered as the first was, and handed to the animation writer at once, so only the frame at
// hand is kept. An animation written as a still format (format(jpeg), say) is its first frame.
Status animate(RenderContext& c) {
  const ImageFormat format = output_format(c.spec, c.info, c.request.negotiated);
  if (!c.frames || c.info.frames < 2 || !animates(format)) return Status::Ok();
  const std::uint64_t frame_pixels = static_cast<std::uint64_t>(c.image.total());
  if (frame_pixels * static_cast<std::uint64_t>(c.info.frames) > c.settings.max_animation_pixels) {
    return Status(Code::kTooLarge,
                  "the animation's thumbnail has more pixels (over all its "
                  "frames) than the limit of " +
                      std::to_string(c.settings.max_animation_pixels));
  }
  const cv::Size size = c.image.size();
  Result<std::unique_ptr<AnimationWriter>> writer =
      animation_writer(format, size, c.info.loop_count, c.spec, c.settings);
  if (!writer.ok()) return writer.status();
  c.animation = std::move(writer).value();
  cv::Mat first = c.image.clone();  // the writer may change what it is given
  if (Status added = c.animation->add(first, c.first_duration_ms); !added.ok()) return added;
  c.frames_written = 1;
  cv::Mat canvas;
  int duration_ms = 0;
  while (true) {
    Result<bool> read = c.frames->next(canvas, duration_ms);
    if (!read.ok()) return read.status();
    if (!*read) break;
    c.image = canvas;
    c.orientation = c.info.orientation;
    if (c.trimmed) {  // as trim() cut the first frame
      c.image = c.image.clone();
      apply_orientation(c.image, c.orientation);
      c.orientation = 1;
      c.image = c.image(cv::Rect(c.trimmed->x, c.trimmed->y, c.trimmed->width, c.trimmed->height));
    }
    for (const Step& step : kFrameSteps) {
      if (Status done = step.run(c); !done.ok()) return done;
    }
    if (c.image.size() != size) return Status(Code::kInternal, "the animation's frames differ");
    if (c.image.data == canvas.data) c.image = c.image.clone();  // the reader's own canvas
    if (Status added = c.animation->add(c.image, duration_ms); !added.ok()) return added;
    ++c.frames_written;
  }
  c.image = first;
  return Status::Ok();
}

// Encodes (within max_bytes() when the URL asks).
Status encode_output(RenderContext& c) {
  Thumbnail& thumb = c.thumb;
  thumb.format = output_format(c.spec, c.info, c.request.negotiated);
  thumb.size = {c.image.cols, c.image.rows};
  if (c.animation) {
    Result<std::string> bytes = c.animation->finish();
    if (!bytes.ok()) return bytes.status();
    thumb.bytes = std::move(bytes).value();
    thumb.frames = c.frames_written;
    return Status::Ok();
  }
  // quality(auto) and max_bytes() encode several times: the chroma choice is made once.
  const RenderSettings settings = with_chroma_decided(c.image, thumb.format, c.settings);
  std::optional<int> chosen;  // the quality quality(auto) chose
  if (wants_auto_quality(c.spec, settings, thumb.format)) {
    Result<QualityChoice> choice =
        encode_auto_quality(c.image, thumb.format, c.spec, settings, c.request.deadline);
    if (!choice.ok()) return choice.status();
    thumb.bytes = std::move(choice->bytes);
    thumb.auto_quality = choice->quality;
    chosen = choice->quality;
  } else {
    Result<std::string> bytes = encode_image(c.image, thumb.format, c.spec, settings);
    if (!bytes.ok()) return bytes.status();
    thumb.bytes = std::move(bytes).value();
  }
  if (c.spec.max_bytes) {
    Status fitted = fit_max_bytes(c.image, thumb.format, c.spec, settings, c.request.deadline,
                                  chosen, thumb.bytes);
    if (!fitted.ok()) return fitted;
  }
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
  c.thumb.format = output_format(c.spec, c.info, c.request.negotiated);
  Result<std::string> bytes = encode_image(c.image, c.thumb.format, c.spec, c.settings);
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
    {animate, &StageTimes::transform_ms},       {encode_output, &StageTimes::encode_ms},
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
