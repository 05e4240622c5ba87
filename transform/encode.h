// Encoding a thumbnail: each format by its own library.
// - JPEG through libjpeg-turbo, still WebP through libwebp (its alpha plane compressed on a
//   second thread), PNG through libpng (adaptive filters and zlib's run-length strategy up to
//   level 6); colour at half resolution (4:2:0) unless output.chroma_subsampling keeps it full
//   for this thumbnail (sharp colour edges; WebP then converts with sharp YUV);
// - AVIF through libavif with libaom, at `output.avif_speed`, 4:2:0 or 4:4:4 as JPEG, sRGB code
//   points;
// - GIF through giflib, with a palette chosen by libimagequant (dithered; binary transparency);
// - animations (animated.h) as animated GIF (giflib) or animated WebP (libwebpmux), keeping each
//   frame's duration and the loop count; every frame is a whole canvas, so whatever the
//   original's disposal did is already in its pixels.
// Alpha is flattened onto the background colour (fill) for JPEG and kept for the others.
//
// Internal to transform/. Thread-safe: no shared state.
#pragma once

#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <string>

#include "conf/base/status.h"
#include "transform/animated.h"
#include "transform/pipeline.h"

namespace thimble::transform {

// `image` (8-bit BGR or BGRA; it may be flattened or bled in place) as `format`. `quality`
// overrides the URL's and the configured quality (max_bytes() searches with it).
// Failure: Code::kInternal.
Result<std::string> encode_image(cv::Mat& image, ImageFormat format, const ThumbnailSpec& spec,
                                 const RenderSettings& settings,
                                 std::optional<int> quality = std::nullopt);

// `settings` with output.chroma_subsampling `auto` decided for `image` as `format` (`444` or
// `420`; only JPEG, WebP and AVIF subsample), so that the encodes of a quality search look at the
// pixels once.
RenderSettings with_chroma_decided(const cv::Mat& image, ImageFormat format,
                                   const RenderSettings& settings);

// An animated GIF or WebP written one frame at a time, so a render keeps one frame (GIF: two)
// whatever the frame count, never them all.
class AnimationWriter {
 public:
  virtual ~AnimationWriter() = default;
  // `frame` (8-bit BGR or BGRA, of the size the writer was made for; it may be changed in place)
  // shows for `duration_ms`.
  virtual Status add(cv::Mat& frame, int duration_ms) = 0;
  // The animation; call once, after the last frame.
  virtual Result<std::string> finish() = 0;
};

Result<std::unique_ptr<AnimationWriter>> animation_writer(
    ImageFormat format, cv::Size size, int loop_count, const ThumbnailSpec& spec,
    const RenderSettings& settings, std::optional<int> quality = std::nullopt);

// `frames` (every frame a whole canvas of one size) as an animated GIF or WebP.
Result<std::string> encode_animation(Frames& frames, ImageFormat format, const ThumbnailSpec& spec,
                                     const RenderSettings& settings,
                                     std::optional<int> quality = std::nullopt);

}  // namespace thimble::transform
