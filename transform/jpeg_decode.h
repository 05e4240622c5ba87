// JPEG decoding with libjpeg-turbo directly (the library OpenCV would use), so that what is
// decoded is what was checked:
// - the frame libjpeg reads (jpeg_read_header) must be the one the sniffer read, else 415: the
//   pixel limits were checked on the sniffed size;
// - a progressive file's whole-image coefficients (2 bytes x 64 per block and component: 6 bytes
//   a pixel at 4:4:4, 3 at 4:2:0) must fit `max_memory_bytes`, else 413, and libjpeg's own memory
//   manager is held to it too;
// - the decode stops at the deadline (503) and after `max_scans` scans (415);
// - DCT-domain scaling by 1/2, 1/4 or 1/8 when asked.
// CMYK and inverted (Adobe) CMYK are turned into BGR through the file's CMYK profile when it has
// one (and colour is managed), else as OpenCV does; greyscale into BGR.
//
// Internal to transform/. Thread-safe: no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <opencv2/core.hpp>
#include <span>

#include "conf/base/deadline.h"
#include "conf/base/status.h"
#include "transform/sniff.h"

namespace thimble::transform {

// What one decode may spend; the defaults are unlimited but for the scan count.
struct DecodeBudget {
  Deadline deadline;
  std::uint64_t max_memory_bytes = 0;  // decoder working memory (coefficients); 0 = no limit
  int max_scans = 100;                 // progressive scans read before 415
  // Convert a CMYK JPEG through its embedded CMYK profile (output.color_management: srgb).
  bool manage_colour = false;
};

// `data`, sniffed as `info`, decoded to 8-bit BGR at 1/`shrink` scale (1, 2, 4 or 8).
Result<cv::Mat> decode_jpeg(std::span<const std::uint8_t> data, const ImageInfo& info, int shrink,
                            const DecodeBudget& budget);

// The status of a decode or a render stopped at the request's deadline (503).
Status deadline_passed();

}  // namespace thimble::transform
