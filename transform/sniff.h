// sniff(): reads an original's header (format, stored dimensions, alpha, EXIF orientation)
// without decoding any pixels, so over-limit or unsupported images are refused before a single
// pixel buffer is allocated. OpenCV has no such API: without it a 3 KB JPEG claiming 30000x30000
// costs seconds and gigabytes to reject.
//
// Every byte may be hostile: all reads are bounds-checked, loops are bounded by the input size,
// nothing is allocated. Thread-safe (pure function).
#pragma once

#include <cstdint>
#include <span>

#include "conf/base/status.h"
#include "transform/image_format.h"

namespace thimble::transform {

struct ImageInfo {
  ImageFormat format = ImageFormat::kJpeg;
  int width = 0;  // as stored, before EXIF orientation
  int height = 0;
  int orientation = 1;  // EXIF orientation 1-8 (1 when absent or invalid)
  bool has_alpha = false;
  bool progressive = false;  // progressive JPEG
  bool cmyk = false;         // a four-component (CMYK) JPEG
  bool grey = false;         // one grey channel (a one-component JPEG, a grey PNG)
  // A progressive JPEG whose 1/8-scale decode jpeg_dc.h makes from its DC coefficients: every
  // component decoded with a 1x1 transform at 1/8, or 2x2 for 4:2:0 chroma.
  bool dc_eighth = false;
  bool animated = false;  // animated WebP or GIF (more than one frame)
  int frames = 1;         // frames of a GIF or an animated WebP
  int loop_count = 0;     // how many times an animation plays; 0: forever
  // The largest embedded preview decodable instead of the image (a HEIF thumbnail item), with
  // the image's aspect ratio; 0x0 when there is none.
  int thumbnail_width = 0;
  int thumbnail_height = 0;
  // What a decode makes when it is more than the image: a HEIF grid's canvas of whole tiles,
  // which the grid crops (at most a tile more on each axis). 0x0 when it is the image's size.
  int coded_width = 0;
  int coded_height = 0;

  // Orientations 5-8 swap width and height.
  bool swaps_axes() const { return orientation >= 5 && orientation <= 8; }
};

// Failure: Code::kUnsupportedMedia ("not an image", "truncated header", ...).
Result<ImageInfo> sniff(std::span<const std::uint8_t> data);

// EXIF orientation (1-8) from a TIFF structure ("II*\0..." or "MM\0*..."), 1 when absent.
int exif_orientation(std::span<const std::uint8_t> tiff);

}  // namespace thimble::transform
