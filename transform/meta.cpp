#include "transform/meta.h"

#include <cmath>

#include "conf/json.h"
#include "transform/decode.h"
#include "transform/trim.h"

namespace thimble::transform {
namespace {

std::string crop_operation(int left, int top, int right, int bottom) {
  return "{\"type\":\"crop\",\"left\":" + std::to_string(left) + ",\"top\":" +
         std::to_string(top) + ",\"right\":" + std::to_string(right) + ",\"bottom\":" +
         std::to_string(bottom) + "}";
}

double alignment_fraction(HAlign a) {
  return a == HAlign::kLeft ? 0.0 : a == HAlign::kRight ? 1.0 : 0.5;
}
double alignment_fraction(VAlign a) {
  return a == VAlign::kTop ? 0.0 : a == VAlign::kBottom ? 1.0 : 0.5;
}

}  // namespace

Result<std::string> describe(std::span<const std::uint8_t> original, const ThumbnailSpec& spec,
                             const RenderSettings& settings,
                             std::optional<ImageFormat> negotiated) {
  Result<ImageInfo> info = inspect(original, settings);
  if (!info.ok()) return info.status();
  const Size source = info->swaps_axes() ? Size{info->height, info->width}
                                         : Size{info->width, info->height};
  // Operations, in the order Thumbor's engine performs them.
  std::vector<std::string> operations;
  Size shown = source;
  ThumbnailSpec planned_spec = spec;
  if (spec.trim) {
    // trim() depends on the pixels: this is the one meta/ answer that decodes the image.
    Result<cv::Mat> image = decode_image(original, *info, 1);
    if (!image.ok()) return image.status();
    apply_orientation(*image, info->orientation);
    if (std::optional<Rect> trimmed = trim_box(*image, *spec.trim)) {
      if (trimmed->size() != source) {
        operations.push_back(crop_operation(trimmed->x, trimmed->y, trimmed->x + trimmed->width,
                                            trimmed->y + trimmed->height));
      }
      shown = trimmed->size();
      planned_spec = shift_crop(spec, *trimmed);
    }
  }
  Result<Plan> plan = make_plan(planned_spec, shown, settings.max_output_dimension);
  if (!plan.ok()) return plan.status();

  const Rect base = plan->manual_crop.value_or(Rect{0, 0, shown.width, shown.height});
  if (plan->manual_crop) {
    operations.push_back(
        crop_operation(base.x, base.y, base.x + base.width, base.y + base.height));
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
                                                  spec.filters, plan->box.width,
                                                  plan->box.height);
  const int focal_x = static_cast<int>(std::floor(base.width * alignment_fraction(spec.halign)));
  const int focal_y = static_cast<int>(std::floor(base.height * alignment_fraction(spec.valign)));

  std::string json = "{\"thumbor\":{\"source\":{\"url\":" + json_string(spec.image) +
                     ",\"width\":" + std::to_string(source.width) +
                     ",\"height\":" + std::to_string(source.height) +
                     ",\"frameCount\":1,\"format\":" +
                     json_string(format_name(info->format)) + "},\"operations\":[";
  for (std::size_t i = 0; i < operations.size(); ++i) json += (i ? "," : "") + operations[i];
  json += "],\"target\":{\"width\":" + std::to_string(width) +
          ",\"height\":" + std::to_string(height) + ",\"format\":" +
          json_string(format_name(output_format(spec, info->format, negotiated))) +
          "},\"focal_points\":[{\"x\":" + std::to_string(focal_x) +
          ",\"y\":" + std::to_string(focal_y) +
          ",\"z\":1,\"height\":1,\"width\":1,\"origin\":\"alignment\"}]}}";
  return json;
}

}  // namespace thimble::transform
