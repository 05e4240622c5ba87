// Decoding and orientation: the steps that turn an original's bytes into pixels the way Thimble
// wants them (8-bit BGR or BGRA, EXIF orientation under Thimble's control, never OpenCV's).
// Internal to transform/: the pipeline and meta/ share them.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <span>

#include "conf/base/status.h"
#include "transform/jpeg_decode.h"
#include "transform/pipeline.h"
#include "transform/plan.h"
#include "transform/sniff.h"

namespace thimble::transform {

// Decodes `data` (already sniffed as `info`) to 8-bit BGR or BGRA in stored orientation. JPEGs are
// decoded at 1/`shrink` scale (1, 2, 4 or 8) in the DCT domain, a still WebP by libwebp's
// area-averaging rescaler to 1/`shrink` of its size (rounded up); a HEIC or AVIF file from its
// thumbnail item when that is at least 1/`shrink` of the image (decodes_heif_thumbnail()), else
// its colour planes reduced by area to 1/`shrink` (rounded up; heif_decode.h). Each format is
// decoded by its own library, which must read the size that was
// sniffed; the decode stops when `budget` runs out. Failures are 415s, past the deadline 503, over
// the memory budget 413.
Result<cv::Mat> decode_image(std::span<const std::uint8_t> data, const ImageInfo& info, int shrink,
                             const DecodeBudget& budget = {});

// What a decode may spend under `settings` until `deadline`.
DecodeBudget decode_budget(const RenderSettings& settings, const Deadline& deadline);

// Turns a stored image into the displayed one for an EXIF orientation (1-8).
void apply_orientation(cv::Mat& image, int orientation);

// Maps a rectangle in displayed coordinates (of a `shown`-sized image) back to stored ones.
Rect to_stored(Rect r, Size shown, int orientation);

}  // namespace thimble::transform
