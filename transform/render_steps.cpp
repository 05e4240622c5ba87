#include "transform/render_steps.h"

#include <algorithm>
#include <chrono>

#include "transform/decode.h"
#include "transform/smart.h"
#include "transform/trim.h"

namespace thimble::transform {
std::string crop_operation(int left, int top, int right, int bottom) {
  return "{\"type\":\"crop\",\"left\":" + std::to_string(left) + ",\"top\":" + std::to_string(top) +
         ",\"right\":" + std::to_string(right) + ",\"bottom\":" + std::to_string(bottom) + "}";
}

namespace {

Status decode_at(RenderContext& c, int shrink) {
  const DecodeBudget budget = decode_budget(c.settings, c.request.deadline);
  if (has_frames(c.info)) {  // the first frame now, the others one by one (animate)
    Result<std::unique_ptr<FrameReader>> reader = open_frames(c.original, c.info, budget);
    if (!reader.ok()) return reader.status();
    Result<cv::Mat> first = first_frame(**reader, c.first_duration_ms);
    if (!first.ok()) return first.status();
    c.image = std::move(first).value();
    c.frames = std::move(reader).value();
    return Status::Ok();
  }
  Result<cv::Mat> decoded = decode_image(c.original, c.info, shrink, budget);
  if (!decoded.ok()) return decoded.status();
  c.image = *decoded;
  return Status::Ok();
}

}  // namespace

Status run_steps(RenderContext& context, std::span<const Step> steps, std::string_view failure) {
  using Clock = std::chrono::steady_clock;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (i > 0 && context.request.deadline.passed()) return deadline_passed();
    const auto start = Clock::now();
    Status done = Status::Ok();
    try {
      done = steps[i].run(context);
    } catch (const cv::Exception&) {
      done = Status(Code::kInternal, std::string(failure));
    }
    context.thumb.times.*steps[i].stage +=
        std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!done.ok()) return done;
  }
  return Status::Ok();
}

namespace steps {

Status inspect(RenderContext& c) {
  Result<ImageInfo> info = transform::inspect(c.original, c.settings, c.request.header);
  if (!info.ok()) return info.status();
  c.info = *info;
  c.thumb.source = *info;
  c.orientation = info->orientation;
  c.source = info->swaps_axes() ? Size{info->height, info->width} : Size{info->width, info->height};
  c.shown = c.source;
  // Without trim the geometry is known from the header, before decoding (so the decode can be
  // shrunk). trim() needs the pixels first: it is planned after the decode. smart/ only moves
  // the crop, never resizes it, so the alignment plan's shrink factor holds for it too.
  if (!c.spec.trim && !c.plan_unbounded) {
    Result<Plan> planned =
        make_plan(c.spec, c.shown, c.settings.max_output_dimension, explicit_focal_points(c.spec));
    if (!planned.ok()) return planned.status();
    c.plan = *planned;
  }
  return Status::Ok();
}

Status decode_for_plan(RenderContext& c) {
  c.thumb.shrink_on_load =
      c.plan ? shrink_on_load(c.info, c.plan->region.size(), c.plan->target) : 1;
  return decode_at(c, c.thumb.shrink_on_load);
}

Status decode_whole(RenderContext& c) {
  if (Status decoded = decode_at(c, 1); !decoded.ok()) return decoded;
  apply_orientation(c.image, c.orientation);
  c.orientation = 1;
  return Status::Ok();
}

Status decode_for_detection(RenderContext& c) {
  if (!c.spec.trim && !c.spec.smart) return Status::Ok();
  // trim needs every pixel; smart/ detects on a copy of at most kDetectionSide, so the decode
  // shrinks as far as that still leaves (a HEIF thumbnail item first, when it is large enough).
  int shrink = 1;
  if (!c.spec.trim && c.info.thumbnail_width > 0 &&
      std::max(c.info.thumbnail_width, c.info.thumbnail_height) >= kDetectionSide) {
    shrink = heif_thumbnail_shrink(c.info);
  } else if (!c.spec.trim && shrinks_on_decode(c.info)) {
    const int longest = std::max(c.info.width, c.info.height);
    while (shrink < 8 && longest / (shrink * 2) >= kDetectionSide) shrink *= 2;
  }
  return decode_at(c, shrink);
}

Status trim(RenderContext& c) {
  if (!c.spec.trim || c.image.empty()) return Status::Ok();
  apply_orientation(c.image, c.orientation);
  c.orientation = 1;
  const Rect trimmed =
      trim_box(c.image, *c.spec.trim).value_or(Rect{0, 0, c.image.cols, c.image.rows});
  if (trimmed.size() != c.source) {
    c.operations.push_back(crop_operation(trimmed.x, trimmed.y, trimmed.x + trimmed.width,
                                          trimmed.y + trimmed.height));
  }
  c.image = c.image(cv::Rect(trimmed.x, trimmed.y, trimmed.width, trimmed.height));
  c.trimmed = trimmed;
  c.shown = trimmed.size();
  c.planned_spec = shift_crop(c.spec, trimmed);
  return Status::Ok();
}

Status smart(RenderContext& c) {
  if (!c.spec.smart) return Status::Ok();
  FocalPointCache cache = c.request.focal_cache;
  if (c.spec.trim) cache.key += "|" + c.spec.trim->text();  // points of the trimmed image
  c.focal_points = find_focal_points(c.image, c.orientation, c.shown, c.settings, cache);
  return Status::Ok();
}

Status plan(RenderContext& c) {
  for (const FocalPoint& p : explicit_focal_points(c.spec)) c.focal_points.push_back(p);
  if (!c.plan || c.spec.trim || c.spec.smart) {
    const int limit = c.plan_unbounded ? std::max(c.shown.width, c.shown.height)
                                       : c.settings.max_output_dimension;
    Result<Plan> planned = make_plan(c.planned_spec, c.shown, limit, c.focal_points);
    if (!planned.ok()) return planned.status();
    c.plan = *planned;
  }
  c.thumb.region = c.plan->region;
  return Status::Ok();
}

}  // namespace steps
}  // namespace thimble::transform
