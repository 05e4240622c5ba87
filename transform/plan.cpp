#include "transform/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace thimble::transform {
namespace {

// Python's round(): half to even (the default floating-point rounding mode).
double round_even(double x) {
  return std::nearbyint(x);
}

// Thumbor 7's fit-in rounding: round(x + 1e-5), so halves round up as they did in Python 2.
double round_up_half(double x) {
  return std::nearbyint(x + 1e-5);
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

// The requested sides as Thumbor holds them: pixels, `orig` or 0 (auto).
struct Requested {
  Length width, height;
};

// no_upscale() clamps each requested side to the (oriented) source's, `orig` included.
Requested requested_sides(const ThumbnailSpec& spec, Size source) {
  Requested r{spec.width, spec.height};
  if (spec.no_upscale) {
    auto clamp = [](Length& l, int side) {
      if (l.kind == Length::Kind::kOrig) l = {Length::Kind::kPixels, side};
      if (l.kind == Length::Kind::kPixels) l.pixels = std::min(l.pixels, side);
    };
    clamp(r.width, source.width);
    clamp(r.height, source.height);
  }
  return r;
}

// A requested side in pixels: `orig` is the given source side, auto is 0.
double pixels_of(const Length& l, double source) {
  return l.kind == Length::Kind::kOrig   ? source
         : l.kind == Length::Kind::kAuto ? 0.0
                                         : static_cast<double>(l.pixels);
}

// Thumbor's target: `orig` is the source side, 0/missing is proportional to the other.
void target_dimensions(const Requested& r, double sw, double sh, double& tw, double& th) {
  bool no_width = r.width.kind == Length::Kind::kAuto;
  bool no_height = r.height.kind == Length::Kind::kAuto;
  if (no_width && no_height) {
    tw = sw;
    th = sh;
    return;
  }
  tw = no_width ? round_even(pixels_of(r.height, sh) * sw / sh) : pixels_of(r.width, sw);
  th = no_height ? round_even(pixels_of(r.width, sw) * sh / sw) : pixels_of(r.height, sh);
}

}  // namespace

std::vector<FocalPoint> explicit_focal_points(const ThumbnailSpec& spec) {
  std::vector<FocalPoint> points;
  for (const CropBox& b : spec.focal_boxes) {
    FocalPoint p;
    p.width = b.right - b.left;
    p.height = b.bottom - b.top;
    p.x = b.left + p.width / 2;
    p.y = b.top + p.height / 2;
    p.weight = static_cast<double>(p.width) * p.height;
    p.origin = "Explicit";
    points.push_back(p);
  }
  return points;
}

std::vector<FocalPoint> effective_focal_points(const ThumbnailSpec& spec, Rect region,
                                               const std::vector<FocalPoint>& focal_points) {
  std::vector<FocalPoint> inside;
  for (FocalPoint p : focal_points) {
    if (p.x < region.x || p.x > region.x + region.width || p.y < region.y ||
        p.y > region.y + region.height) {
      continue;
    }
    p.x -= region.x;
    p.y -= region.y;
    inside.push_back(p);
  }
  if (inside.empty()) {
    // Thumbor's FocalPoint.from_alignment truncates to whole pixels.
    inside.push_back({static_cast<int>(region.width * alignment(spec.halign)),
                      static_cast<int>(region.height * alignment(spec.valign))});
  }
  return inside;
}

Result<Plan> make_plan(const ThumbnailSpec& spec, Size source, int max_output_dimension,
                       const std::vector<FocalPoint>& focal_points) {
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
    if (left < right && top < bottom) {
      r = {left, top, right - left, bottom - top};
      plan.manual_crop = r;
    }
  }
  const double sw = r.width, sh = r.height;
  const Requested requested = requested_sides(spec, source);
  double tw = 0, th = 0;
  target_dimensions(requested, sw, sh, tw, th);
  tw = std::max(tw, 1.0);
  th = std::max(th, 1.0);
  // Thumbor's request box, before it is adjusted by fit-in (0 = the image's own side).
  double box_w = pixels_of(requested.width, sw), box_h = pixels_of(requested.height, sh);

  plan.region = r;
  if (spec.fit != FitMode::kCrop) {
    // 2a. Fit-in: scale the whole region into (or, full-fit-in, over) the box; never crop.
    if (spec.adaptive && ((sw < sh && tw > th) || (sw > sh && tw < th))) {
      std::swap(tw, th);
      std::swap(box_w, box_h);
    }
    bool full = spec.fit == FitMode::kFullFitIn;
    if (!full && tw >= sw && th >= sh) {
      plan.target = r.size();
    } else {
      double sign = full ? -1.0 : 1.0;
      if (sw / tw * sign >= sh / th * sign) {
        plan.target = {static_cast<int>(tw), static_cast<int>(round_up_half(sh * tw / sw))};
      } else {
        plan.target = {static_cast<int>(round_up_half(sw * th / sh)), static_cast<int>(th)};
      }
      // Thumbor widens its request to what fit-in produced, so fill() never crops the result.
      box_w = std::max(box_w, static_cast<double>(plan.target.width));
      box_h = std::max(box_h, static_cast<double>(plan.target.height));
    }
  } else {
    // 2b. Default: crop the region to the target aspect ratio around the focal point, then
    // resize to exactly the target. stretch() resizes without the crop.
    if (!spec.stretch && round2(sw / sh) != round2(tw / th)) {
      // Thumbor's centre of mass: the weighted mean of the focal points, floored.
      double total = 0, sum_x = 0, sum_y = 0;
      for (const FocalPoint& p : effective_focal_points(spec, r, focal_points)) {
        total += p.weight;
        sum_x += p.x * p.weight;
        sum_y += p.y * p.weight;
      }
      double focal_x = std::floor(sum_x / total);
      double focal_y = std::floor(sum_y / total);
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

  // 3. upscale(): a result smaller than the box on both sides grows to fit inside it
  // (Thumbor truncates here).
  if (spec.upscale && box_w > 0 && box_h > 0 && plan.target.width < box_w &&
      plan.target.height < box_h) {
    const double cw = plan.target.width, ch = plan.target.height;
    if (cw / box_w >= ch / box_h) {
      plan.target = {static_cast<int>(box_w), static_cast<int>(ch * box_w / cw)};
    } else {
      plan.target = {static_cast<int>(cw * box_h / ch), static_cast<int>(box_h)};
    }
  }
  plan.box = {static_cast<int>(box_w), static_cast<int>(box_h)};
  if (pads_to_box(spec.filters) &&
      (plan.box.width > max_output_dimension || plan.box.height > max_output_dimension)) {
    return Status(Code::kBadRequest, "fill() would pad to " + std::to_string(plan.box.width) + "x" +
                                         std::to_string(plan.box.height) + ", over the limit of " +
                                         std::to_string(max_output_dimension) + " per side");
  }
  if (plan.target.width > max_output_dimension || plan.target.height > max_output_dimension) {
    return Status(Code::kBadRequest, "the output would be " + std::to_string(plan.target.width) +
                                         "x" + std::to_string(plan.target.height) +
                                         ", over the limit of " +
                                         std::to_string(max_output_dimension) + " per side");
  }
  return plan;
}

int shrink_on_load(Size region, Size target, bool dc_eighth) {
  if (dc_eighth && region.width / 8 >= target.width && region.height / 8 >= target.height) {
    return 8;
  }
  for (int factor : {8, 4, 2}) {
    if (region.width / factor >= 2 * target.width && region.height / factor >= 2 * target.height) {
      return factor;
    }
  }
  // A large output: libjpeg's half-size inverse DCT already averages 2x2 (after the area resize
  // the result is within 48-52 dB of a full decode's, measured on the corpus at 1280 px), at a
  // third less decode time and a quarter of the pixels to resize.
  if (region.width / 2 >= target.width && region.height / 2 >= target.height) return 2;
  return 1;
}

bool shrinks_on_decode(const ImageInfo& source) {
  switch (source.format) {
    case ImageFormat::kJpeg: return true;
    case ImageFormat::kWebp: return !source.animated;
    case ImageFormat::kHeic:
    case ImageFormat::kAvif: return !source.has_alpha;
    default: return false;
  }
}

bool decodes_heif_thumbnail(const ImageInfo& info, int shrink) {
  return shrink > 1 && info.thumbnail_width > 0 &&
         static_cast<std::int64_t>(info.thumbnail_width) * shrink >= info.width;
}

int heif_thumbnail_shrink(const ImageInfo& info) {
  return info.thumbnail_width > 0
             ? std::max(2, (info.width + info.thumbnail_width - 1) / info.thumbnail_width)
             : 1;
}

int shrink_on_load(const ImageInfo& source, Size region, Size target) {
  if (source.format == ImageFormat::kJpeg) return shrink_on_load(region, target, source.dc_eighth);
  // A HEIF thumbnail item (only HEIF files have one) that still leaves twice the target.
  if (source.thumbnail_width > 0) {
    const double scale = static_cast<double>(source.thumbnail_width) / source.width;
    if (region.width * scale >= 2.0 * target.width &&
        region.height * scale >= 2.0 * target.height) {
      return heif_thumbnail_shrink(source);
    }
  }
  // libwebp's rescaler, a HEIF file's planes reduced by area (heif_decode.h); never at a factor
  // that would take a thumbnail short of twice the target instead.
  if (!shrinks_on_decode(source)) return 1;
  const int factor = shrink_on_load(region, target);
  return decodes_heif_thumbnail(source, factor) ? 1 : factor;
}

}  // namespace thimble::transform
