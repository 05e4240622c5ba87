// HEIC and AVIF decoding with libheif (libde265 for HEVC, dav1d for AV1), so that what is decoded
// is what was checked:
// - the header Thimble read (heif_header.h) decided the format, size, orientation and alpha; the
//   image libheif finds must have that size, else 415;
// - libheif's own limit is set to the configured per-side limit, and its tile decoding runs on the
//   calling thread (parallelism comes from concurrent requests);
// - rotation and mirroring are left to Thimble (applied to the small result, as EXIF orientation
//   is for JPEG), so the geometry of every format goes through one path;
// - 10- and 12-bit images are reduced to 8 bits.
// When `thumbnail` is set, the file's thumbnail item is decoded instead of the primary image (the
// shrink-on-load of this format: the caller checked it is large enough).
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

Result<cv::Mat> decode_heif(std::span<const std::uint8_t> data, const ImageInfo& info,
                            bool thumbnail, const DecodeBudget& budget);

}  // namespace thimble::transform
