#include "transform/plan.h"

#include <algorithm>
#include <cmath>

namespace thimble::transform {
namespace {

// Python's round(): half to even (the default floating-point rounding mode).
double round_even(double x) {
  return std::nearbyint(x);
}

// Python's round(x, 2), used by Thumbor to compare aspect ratios.
double round2(double x) {
  return std::nearbyint(x * 100.0) / 100.0;
}

double alignment(HAlign a) {
  return a == HAlign::kLeft ? 0.0 : a == HAlign::kRight ? 1.0 : 0.5;
}
double alignment(VAlign a) {
  return a == VAlign::kTop ? 0.0 : a == VAlign::kBottom ? 1.0 : 0.5;
}

// Thumbor's requested target: `orig` is the source side, 0/missing is proportional to the other.
void target_dimensions(const ThumbnailSpec& spec, double sw, double sh, double& tw, double& th) {
  auto side = [](const Length& l, double source) {
    return l.kind == Length::Kind::kOrig ? source : static_cast<double>(l.pixels);
  };
  bool no_width = spec.width.kind == Length::Kind::kAuto;
  bool no_height = spec.height.kind == Length::Kind::kAuto;
  if (no_width && no_height) {
    tw = sw;
    th = sh;
    return;
  }
  tw = no_width ? round_even(side(spec.height, sh) * sw / sh) : side(spec.width, sw);
  th = no_height ? round_even(side(spec.width, sw) * sh / sw) : side(spec.height, sh);
}

}  // namespace

Result<Plan> make_plan(const ThumbnailSpec& spec, Size source, int max_output_dimension) {
  Plan plan;
  plan.source = source;
  plan.flip_horizontal = spec.flip_horizontal;
  plan.flip_vertical = spec.flip_vertical;

  // 1. Manual crop, clamped to the image; an empty result is ignored (as Thumbor does).
  Rect r{0, 0, source.width, source.height};
  if (spec.crop) {
    int left = std::clamp(spec.crop->left, 0, source.width);
    int top = std::clamp(spec.crop->top, 0, source.height);
    int right = std::clamp(spec.crop->right, 0, source.width);
    int bottom = std::clamp(spec.crop->bottom, 0, source.height);
    if (left < right && top < bottom) r = {left, top, right - left, bottom - top};
  }
  const double sw = r.width, sh = r.height;
  double tw = 0, th = 0;
  target_dimensions(spec, sw, sh, tw, th);
  tw = std::max(tw, 1.0);
  th = std::max(th, 1.0);

  plan.region = r;
  if (spec.fit != FitMode::kCrop) {
    // 2a. Fit-in: scale the whole region into (or, full-fit-in, over) the box; never crop.
    if (spec.adaptive && ((sw < sh && tw > th) || (sw > sh && tw < th))) std::swap(tw, th);
    bool full = spec.fit == FitMode::kFullFitIn;
    if (!full && tw >= sw && th >= sh) {
      plan.target = r.size();
    } else {
      double sign = full ? -1.0 : 1.0;
      if (sw / tw * sign >= sh / th * sign) {
        plan.target = {static_cast<int>(tw), static_cast<int>(round_even(sh * tw / sw))};
      } else {
        plan.target = {static_cast<int>(round_even(sw * th / sh)), static_cast<int>(th)};
      }
    }
  } else {
    // 2b. Default: crop the region to the target aspect ratio around the focal point, then
    // resize to exactly the target.
    if (round2(sw / sh) != round2(tw / th)) {
      double focal_x = sw * alignment(spec.halign);
      double focal_y = sh * alignment(spec.valign);
      double cw = sw, ch = sh;
      if (tw / sw > th / sh) {
        ch = round_even(sw * th / tw);
      } else {
        cw = std::ceil(tw * sh / th);
      }
      cw = std::clamp(cw, 1.0, sw);
      ch = std::clamp(ch, 1.0, sh);
      double left = round_even(std::min(std::max(focal_x - cw / 2, 0.0), sw - cw));
      double top = round_even(std::min(std::max(focal_y - ch / 2, 0.0), sh - ch));
      plan.region = {r.x + static_cast<int>(left), r.y + static_cast<int>(top),
                     static_cast<int>(cw), static_cast<int>(ch)};
    }
    plan.target = {static_cast<int>(tw), static_cast<int>(th)};
  }
  plan.target.width = std::max(plan.target.width, 1);
  plan.target.height = std::max(plan.target.height, 1);
  if (plan.target.width > max_output_dimension || plan.target.height > max_output_dimension) {
    return Status(Code::kBadRequest, "the output would be " + std::to_string(plan.target.width) +
                                         "x" + std::to_string(plan.target.height) +
                                         ", over the limit of " +
                                         std::to_string(max_output_dimension) + " per side");
  }
  return plan;
}

int shrink_on_load(Size region, Size target) {
  for (int factor : {8, 4, 2}) {
    if (region.width / factor >= 2 * target.width && region.height / factor >= 2 * target.height) {
      return factor;
    }
  }
  return 1;
}

}  // namespace thimble::transform
