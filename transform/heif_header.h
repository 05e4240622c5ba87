// The header of a HEIF file (HEIC or AVIF), read from its ISO base media boxes without decoding
// anything: the primary image's stored size (`ispe`), its rotation and mirroring (`irot`, `imir`,
// composed in their association order into the equivalent EXIF orientation), alpha (an `auxl`
// item whose `auxC` names alpha), bit depth (`pixi`), the colour description (`colr`: an ICC
// profile or nclx code points), whether it is a grid of tiles, and its largest thumbnail item.
//
// It is also the first line of defence for libheif: a primary item, a grid tile or a thumbnail
// that is missing, of an unknown type, a grid of grids or a tile that is the grid itself are
// refused here (415) before libheif sees the file.
//
// Every byte may be hostile: reads are bounds-checked and every loop is bounded by the input.
// Internal to transform/. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "conf/base/status.h"
#include "transform/image_format.h"

namespace thimble::transform {

// nclx colour code points (ITU-T H.273).
struct NclxColour {
  int primaries = 2;  // 1: BT.709/sRGB, 9: BT.2020, 12: Display P3 (SMPTE EG 432-1); 2: unknown
  int transfer = 2;   // 1/6/14/15: BT.709-like, 13: sRGB, 16: PQ, 18: HLG; 2: unknown
  int matrix = 2;
  bool full_range = false;
};

struct HeifHeader {
  ImageFormat format = ImageFormat::kHeic;  // kHeic (HEVC) or kAvif (AV1)
  int width = 0;                            // the primary image as stored (before irot/imir)
  int height = 0;
  int orientation = 1;  // irot and imir as an EXIF orientation (1-8)
  bool has_alpha = false;
  int bit_depth = 8;
  bool grid = false;
  int tiles = 0;  // grid tiles
  // What a decode makes before the grid's crop: a grid's canvas of whole tiles (at most a tile
  // larger than the image on each axis), else the image's size.
  int coded_width = 0;
  int coded_height = 0;
  // The largest thumbnail of the primary image with its aspect ratio; 0x0 when there is none.
  int thumbnail_width = 0;
  int thumbnail_height = 0;
  std::span<const std::uint8_t> icc;  // the `colr` ICC profile (prof/rICC), empty when none
  std::optional<NclxColour> nclx;     // the `colr` nclx description, when there is one
};

// Whether `data` starts like a HEIF file (an `ftyp` box with a HEIF or AVIF brand).
bool looks_like_heif(std::span<const std::uint8_t> data);

// Failure: Code::kUnsupportedMedia with the reason.
Result<HeifHeader> read_heif_header(std::span<const std::uint8_t> data);

}  // namespace thimble::transform
