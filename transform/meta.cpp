#include "transform/meta.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "conf/base/json.h"
#include "transform/render_steps.h"

namespace thimble::transform {
namespace {

constexpr Step kLeadingSteps[] = {
    {steps::inspect, &StageTimes::sniff_ms},  {steps::decode_for_detection, &StageTimes::decode_ms},
    {steps::trim, &StageTimes::transform_ms}, {steps::smart, &StageTimes::smart_ms},
    {steps::plan, &StageTimes::transform_ms},
};

}  // namespace

Result<std::string> describe(std::span<const std::uint8_t> original, const ThumbnailSpec& spec,
                             const RenderSettings& settings, const RenderRequest& request) {
  // The same leading steps as a render (trim and smart/ decode only what they need), then the
  // operations, in the order Thumbor's engine performs them.
  RenderContext c(original, spec, settings, request);
  if (Status known = run_steps(c, kLeadingSteps, "the image could not be described"); !known.ok())
    return known;
  const ImageInfo* info = &c.info;
  const Size source = c.source;
  const Size shown = c.shown;
  const ThumbnailSpec& planned_spec = c.planned_spec;
  const std::vector<FocalPoint>& detected = c.focal_points;
  const std::optional<Plan>& plan = c.plan;
  std::vector<std::string> operations = std::move(c.operations);
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
                     ",\"frameCount\":" + std::to_string(info->frames) +
                     ",\"format\":" + json_string(format_name(info->format)) + "},\"operations\":[";
  for (std::size_t i = 0; i < operations.size(); ++i) json += (i ? "," : "") + operations[i];
  json +=
      "],\"target\":{\"width\":" + std::to_string(width) + ",\"height\":" + std::to_string(height) +
      ",\"format\":" + json_string(format_name(output_format(spec, *info, request.negotiated))) +
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
