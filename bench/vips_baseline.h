// The libvips baseline of thimble-bench: the same thumbnail made with vips_thumbnail_buffer, so
// every scenario reports Thimble/libvips ratios measured side by side on the same machine.
// Built only when libvips-dev is installed (THIMBLE_HAVE_VIPS).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "transform/image_format.h"

namespace thimble::bench {

// Starts libvips for the process: one worker thread per image and no operation cache, so repeated
// iterations measure real work and parallelism comes from concurrent images, as in Thimble.
bool start_vips(const char* argv0);
std::string libvips_version();

struct VipsTarget {
  int width = 0, height = 0;  // the box; with `crop` the exact output size
  bool crop = false;          // fill the box, cropping the centre (or the "attention" area)
  bool smart = false;
  transform::ImageFormat format = transform::ImageFormat::kJpeg;
  int quality = 80;
  int effort = 4;         // AVIF: libvips' effort 0-9 (libaom's speed is 9 - effort)
  bool animated = false;  // every frame (n=-1), written as an animation
};

// Thumbnails `source` into `target` and encodes it. Empty string and `error` set on failure.
std::string vips_thumbnail(std::span<const std::uint8_t> source, const VipsTarget& target,
                           std::string& error);

}  // namespace thimble::bench
