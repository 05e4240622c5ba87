// PNG decoding. The common PNG (8-bit RGB or RGBA, not interlaced) is inflated whole by
// libdeflate and unfiltered by Thimble (three times faster than libpng's zlib); every other PNG,
// and any that path finds unusual, goes to libpng directly, so that what is decoded is what was
// checked:
// - the IHDR libpng reads must be the one the sniffer read, else 415;
// - rows are read one at a time and the decode stops at the deadline (503);
// - nothing after the last row is read: a stream of compressed data past the image (an IDAT that
//   inflates to gigabytes of rows nobody asked for) costs nothing, where a full read to the end
//   (png_read_end, as OpenCV does) inflates all of it;
// - ancillary chunks Thimble does not use (text, ICC profiles, …) are skipped unread, never
//   inflated.
// Output: 8-bit BGR, or BGRA when the image has alpha (an alpha channel or tRNS); 16-bit samples
// are rounded to 8 bits, palettes and low bit depths expanded, greyscale made BGR.
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

Result<cv::Mat> decode_png(std::span<const std::uint8_t> data, const ImageInfo& info,
                           const DecodeBudget& budget);

}  // namespace thimble::transform
