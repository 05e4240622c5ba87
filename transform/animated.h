// Animated (and still) GIF and animated WebP originals, read one whole frame at a time.
//
// A FrameReader composes each frame onto the canvas the way the format says — GIF disposal
// (none, to background, to previous) and transparency; WebP blending and disposal, through
// libwebp's WebPAnimDecoder — and hands out the canvas as 8-bit BGRA. Only the canvas is kept,
// so memory is one canvas (and one saved canvas for GIF's "restore to previous") whatever the
// frame count; the caller transforms each frame before asking for the next.
//
// The frame count, loop count and canvas size were read by sniff(): the reader stops after the
// sniffed frame count and refuses a canvas of another size (415). Between frames it checks the
// deadline (503).
//
// Internal to transform/. Thread-safety: a reader belongs to one render.
#pragma once

#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <span>
#include <vector>

#include "conf/base/status.h"
#include "transform/jpeg_decode.h"
#include "transform/sniff.h"

namespace thimble::transform {

// An animation's frames as transformed or encoded: whole canvases of one size.
struct Frames {
  std::vector<cv::Mat> images;    // 8-bit BGR or BGRA
  std::vector<int> durations_ms;  // one per image
  int loop_count = 0;             // 0: forever
};

class FrameReader {
 public:
  virtual ~FrameReader() = default;
  // The next frame composed onto the canvas (BGRA, the canvas's own buffer: copy or transform it
  // before the next call) and how long it shows; false after the last frame.
  virtual Result<bool> next(cv::Mat& canvas, int& duration_ms) = 0;
};

// The first frame of a freshly opened `reader` (a copy, its own buffer); 415 when there is none.
Result<cv::Mat> first_frame(FrameReader& reader, int& duration_ms);

// Whether `info` is read through a FrameReader: every GIF, and animated WebP.
inline bool has_frames(const ImageInfo& info) {
  return info.format == ImageFormat::kGif || (info.format == ImageFormat::kWebp && info.animated);
}

// A reader of `data` (sniffed as `info`, for which has_frames() holds). `data` must outlive it.
Result<std::unique_ptr<FrameReader>> open_frames(std::span<const std::uint8_t> data,
                                                 const ImageInfo& info, const DecodeBudget& budget);

}  // namespace thimble::transform
