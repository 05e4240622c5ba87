#include "transform/meta.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "conf/base/json.h"
#include "transform/decode.h"
#include "transform/smart.h"
#include "transform/trim.h"

namespace thimble::transform {
namespace {

std::string crop_operation(int left, int top, int right, int bottom) {
  return "{\"type\":\"crop\",\"left\":" + std::to_string(left) + ",\"top\":" + std::to_string(top) +
         ",\"right\":" + std::to_string(right) + ",\"bottom\":" + std::to_string(bottom) + "}";
}

}  // namespace

Result<std::string> describe(std::span<const std::uint8_t> original, const ThumbnailSpec& spec,
                             const RenderSettings& settings, const RenderRequest& request) {
  Result<ImageInfo> info = inspect(original, settings, request.header);
  if (!info.ok()) return info.status();
  const Size source =
      info->swaps_axes() ? Size{info->height, info->width} : Size{info->width, info->height};
  // Operations, in the order Thumbor's engine performs them.
  std::vector<std::string> operations;
  Size shown = source;
  ThumbnailSpec planned_spec = spec;
  std::vector<FocalPoint> detected;
  if (spec.trim || spec.smart) {
    // trim and smart/ depend on the pixels: decode (trim needs full size; smart/ only enough
    // for the detector's copy).
    int shrink = 1;
    if (!spec.trim && info->format == ImageFormat::kJpeg) {
      const int longest = std::max(info->width, info->height);
      while (shrink < 8 && longest / (shrink * 2) >= kDetectionSide) shrink *= 2;
    }
    Result<cv::Mat> image =
        decode_image(original, *info, shrink, decode_budget(settings, request.deadline));
    if (!image.ok()) return image.status();
    int orientation = info->orientation;
    cv::Mat pixels = *image;
    if (spec.trim) {
      apply_orientation(pixels, orientation);
      orientation = 1;
      if (std::optional<Rect> trimmed = trim_box(pixels, *spec.trim)) {
        if (trimmed->size() != source) {
          operations.push_back(crop_operation(trimmed->x, trimmed->y, trimmed->x + trimmed->width,
                                              trimmed->y + trimmed->height));
        }
        pixels = pixels(cv::Rect(trimmed->x, trimmed->y, trimmed->width, trimmed->height));
        shown = trimmed->size();
        planned_spec = shift_crop(spec, *trimmed);
      }
    }
    if (spec.smart) {
      FocalPointCache cache = request.focal_cache;
      if (spec.trim) cache.key += "|" + spec.trim->text();  // points of the trimmed image
      detected = find_focal_points(pixels, orientation, shown, settings, cache);
    }
  }
  for (const FocalPoint& p : explicit_focal_points(spec)) detected.push_back(p);
  Result<Plan> plan = make_plan(planned_spec, shown, settings.max_output_dimension, detected);
  if (!plan.ok()) return plan.status();

  const Rect base = plan->manual_crop.value_or(Rect{0, 0, shown.width, shown.height});
  if (plan->manual_crop) {
    operations.push_back(crop_operation(base.x, base.y, base.x + base.width, base.y + base.height));
  }
  if (plan->region != base) {
    const int left = plan->region.x - base.x, top = plan->region.y - base.y;
    operations.push_back(
        crop_operation(left, top, left + plan->region.width, top + plan->region.height));
  }
  if (plan->resizes()) {
    operations.push_back("{\"type\":\"resize\",\"width\":" + std::to_string(plan->target.width) +
                         ",\"height\":" + std::to_string(plan->target.height) + "}");
  }
  if (spec.flip_horizontal) operations.push_back("{\"type\":\"flip_horizontally\"}");
  if (spec.flip_vertical) operations.push_back("{\"type\":\"flip_vertically\"}");

  const auto [width, height] = size_after_filters(plan->target.width, plan->target.height,
                                                  spec.filters, plan->box.width, plan->box.height);

  std::string json = "{\"thumbor\":{\"source\":{\"url\":" + json_string(spec.image) +
                     ",\"width\":" + std::to_string(source.width) +
                     ",\"height\":" + std::to_string(source.height) +
                     ",\"frameCount\":1,\"format\":" + json_string(format_name(info->format)) +
                     "},\"operations\":[";
  for (std::size_t i = 0; i < operations.size(); ++i) json += (i ? "," : "") + operations[i];
  json += "],\"target\":{\"width\":" + std::to_string(width) +
          ",\"height\":" + std::to_string(height) + ",\"format\":" +
          json_string(format_name(output_format(spec, info->format, request.negotiated))) +
          "},\"focal_points\":[";
  bool first = true;
  for (const FocalPoint& p : effective_focal_points(planned_spec, base, detected)) {
    char weight[32];
    std::snprintf(weight, sizeof weight, "%.0f", p.weight);
    json += std::string(first ? "" : ",") + "{\"x\":" + std::to_string(p.x) +
            ",\"y\":" + std::to_string(p.y) + ",\"z\":" + weight +
            ",\"height\":" + std::to_string(p.height) + ",\"width\":" + std::to_string(p.width) +
            ",\"origin\":" + json_string(p.origin) + "}";
    first = false;
  }
  json += "]}}";
  return json;
}

}  // namespace thimble::transform
