// The steps a render is made of, over one RenderContext. A pipeline is a list of steps, each a
// small function with one signature; run_steps() is the only loop: it checks the request's
// deadline before every step after the first (past it: 503) and times each step into its stage.
//
// render() (pipeline.cpp), debug/ (pipeline.cpp) and meta/ (meta.cpp) share the leading steps
// declared here — read the header, decode, trim, smart/, plan — and end differently: crop, resize,
// orient, filters and encode; focal points drawn on the source; a JSON description.
//
// Internal to transform/. Thread-safety: a context belongs to one render.
#pragma once

#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conf/base/status.h"
#include "transform/animated.h"
#include "transform/encode.h"
#include "transform/filters.h"
#include "transform/pipeline.h"
#include "transform/plan.h"
#include "transform/spec.h"

namespace thimble::transform {

struct RenderContext {
  RenderContext(std::span<const std::uint8_t> bytes, const ThumbnailSpec& asked,
                const RenderSettings& with, const RenderRequest& for_request)
      : original(bytes), spec(asked), planned_spec(asked), settings(with), request(for_request) {}

  // What the render is given.
  std::span<const std::uint8_t> original;
  const ThumbnailSpec& spec;
  ThumbnailSpec planned_spec;  // the spec in the trimmed image's coordinates once trimmed
  const RenderSettings& settings;
  const RenderRequest& request;

  // What the steps learn and make.
  ImageInfo info;
  Size source;  // the original's size as shown (EXIF orientation applied)
  Size shown;   // the size of what is being cut from: the source, or its trimmed part
  std::optional<Plan> plan;
  // Plan without the output-size limit, sized by what is shown (debug/ draws on the source).
  bool plan_unbounded = false;
  cv::Mat image;
  int orientation = 1;                   // EXIF orientation still to apply to `image`
  std::vector<FocalPoint> focal_points;  // detected, then the URL's own
  std::vector<std::string> operations;   // what meta/ reports, in Thumbor's JSON
  // An animated original: the reader of its frames after the first (which is `image`), the first
  // frame's duration, trim's cut (every frame is cut the same), and the thumbnail's animation as
  // it is written, frame by frame.
  std::unique_ptr<FrameReader> frames;
  int first_duration_ms = 0;
  std::optional<Rect> trimmed;
  std::unique_ptr<AnimationWriter> animation;
  int frames_written = 0;
  // Read once per render, used for every frame.
  std::optional<WatermarkImages> marks;
  std::optional<std::optional<std::string>> profile;  // the embedded ICC profile, once looked for
  Thumbnail thumb;  // the result; its `times` are filled by run_steps()
};

using StepFunction = Status (*)(RenderContext& context);

struct Step {
  StepFunction run;
  double StageTimes::*stage;  // where its time is counted
};

// Runs `steps` in order; the first failure ends the render. A cv::Exception from a step is the
// Code::kInternal `failure`.
Status run_steps(RenderContext& context, std::span<const Step> steps, std::string_view failure);

// A crop as meta/ reports it: {"type":"crop","left":…,"top":…,"right":…,"bottom":…}.
std::string crop_operation(int left, int top, int right, int bottom);

// The leading steps.
namespace steps {
// Reads and checks the header; without trim, plans from it (so the decode can be shrunk).
Status inspect(RenderContext& context);
// Decodes once, at the reduced JPEG scale the plan allows (or whole without a plan).
Status decode_for_plan(RenderContext& context);
// Decodes at full scale and applies the orientation at once.
Status decode_whole(RenderContext& context);
// Decodes only what trim or smart/ need (nothing without either): full size for trim, enough for
// the face detector's copy for smart/ alone.
Status decode_for_detection(RenderContext& context);
// trim: orients the image, cuts the border off, moves the manual crop into the trimmed image.
Status trim(RenderContext& context);
// smart/: the focal points of the (trimmed) image, from memory when known.
Status smart(RenderContext& context);
// Adds the URL's focal points and plans from what is shown (again, after trim or smart/).
Status plan(RenderContext& context);
}  // namespace steps

}  // namespace thimble::transform
