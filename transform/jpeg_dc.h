// A progressive JPEG decoded at 1/8 scale from its DC scans alone.
//
// At 1/8 scale libjpeg turns each 8x8 block into one pixel computed from the block's DC
// coefficient only. A progressive JPEG sends the DC coefficients first, in its first scan; the
// AC scans that follow are most of the file and most of the entropy decoding, and a 1/8 decode
// needs none of them. This decoder reads scans only until every component's DC is known, then
// produces the image, for a fraction of the work. The pixels are exactly those of a full
// 1/8-scale decode when the first scan carries the DC at full precision. When the encoder split
// off the lowest DC bits into a refinement scan late in the file (libjpeg's default progression
// does), they are skipped too if their worth under the file's quantisation is at most 2 levels of
// Y, Cb and Cr (a few of B, G and R; 48-54 dB PSNR against the full decode on the corpus), and
// read otherwise.
//
// A baseline JPEG interleaves DC and AC in one scan: nothing to skip. With chroma subsampled on
// both axes (4:2:0) libjpeg decodes chroma at 1/8 scale with a 2x2 transform: from the DC alone
// (the AC coefficients not yet read are zero) each chroma block comes out flat over its 2x2
// pixels, where the full decode shades it. Luma is exact; the 1/8 image is 43 dB from the full
// decode on the corpus's 4:2:0 photo and its area-resized thumbnail 49 dB, for an eighth of the
// decode time (11 instead of 85-105 ms). Chroma subsampled 4x on both axes is left to the
// ordinary decode.
//
// Internal to transform/. Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <optional>
#include <span>

#include "transform/jpeg_decode.h"

namespace thimble::transform {

// `data` (`width` x `height` as stored, from its header) decoded at 1/8 scale to 8-bit BGR in
// stored orientation, when it is a progressive JPEG in YCbCr, RGB or grayscale, with chroma
// subsampled at most 2x on one of the axes, whose
// DC scans are all present. Nothing otherwise (the caller then decodes it the ordinary way, which
// also reports what is wrong with a damaged file, a frame that is not the sniffed one, or a
// budget that ran out).
std::optional<cv::Mat> decode_progressive_dc(std::span<const std::uint8_t> data, int width,
                                             int height, const DecodeBudget& budget = {});

}  // namespace thimble::transform
