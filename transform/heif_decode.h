// HEIC and AVIF decoding with libheif (libde265 for HEVC, dav1d for AV1), so that what is decoded
// is what was checked:
// - the header Thimble read (heif_header.h) decided the format, size, orientation and alpha; the
//   image libheif finds must have that size, else 415;
// - libheif's own limit is set to the configured per-side limit, and its tile decoding runs on the
//   calling thread (parallelism comes from concurrent requests);
// - rotation and mirroring are left to Thimble (applied to the small result, as EXIF orientation
//   is for JPEG), so the geometry of every format goes through one path;
// - 10- and 12-bit images are reduced to 8 bits.
// Shrink on load, this format's way: for a `shrink` above 1, the file's thumbnail item when it is
// at least 1/shrink of the image (the caller checked it leaves twice the target), else the image
// itself, whose colour planes are each reduced by area to 1/shrink (rounded up) as they are made
// BGR. Images with alpha are decoded at full size: their colour is weighed by alpha in the resize.
// Output: 8-bit BGR, or BGRA when the image has alpha.
//
// Internal to transform/. Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <span>

#include "conf/base/status.h"
#include "transform/jpeg_decode.h"
#include "transform/sniff.h"

namespace thimble::transform {

Result<cv::Mat> decode_heif(std::span<const std::uint8_t> data, const ImageInfo& info, int shrink,
                            const DecodeBudget& budget);

}  // namespace thimble::transform
