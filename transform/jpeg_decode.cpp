#include "transform/jpeg_decode.h"

#include "transform/icc.h"
#include "transform/jpeg_guard.h"

namespace thimble::transform {
namespace {

enum class Outcome { kOk, kCorrupt, kMismatch, kTooMuchMemory, kDeadline, kScans };

// Inverted (Adobe) CMYK to BGR, OpenCV's formula (what imdecode gave before).
void cmyk_row_to_bgr(const JSAMPLE* cmyk, std::uint8_t* bgr, int width) {
  for (int x = 0; x < width; ++x, cmyk += 4, bgr += 3) {
    const int c = cmyk[0], m = cmyk[1], y = cmyk[2], k = cmyk[3];
    bgr[2] = static_cast<std::uint8_t>(k - ((255 - c) * k >> 8));
    bgr[1] = static_cast<std::uint8_t>(k - ((255 - m) * k >> 8));
    bgr[0] = static_cast<std::uint8_t>(k - ((255 - y) * k >> 8));
  }
}

// The libjpeg part, kept free of objects with destructors (longjmp skips them): `out` is
// allocated through `allocate` once the output size is known, `row` is a CMYK scratch row.
struct Decode {
  const std::uint8_t* data;
  std::size_t size;
  int width, height, shrink;
  std::uint64_t max_memory_bytes;
  cv::Mat* out;
  std::vector<JSAMPLE>* cmyk_row;
  // LittleCMS transforms of the file's CMYK profile for plain and inverted (Adobe) samples; null
  // without one, for the formula above.
  void* cmyk_plain;
  void* cmyk_inverted;
};

Outcome run(const Decode& d, JpegGuard& guard) {
  jpeg_decompress_struct cinfo;
  if (setjmp(guard.jump)) {
    jpeg_destroy_decompress(&cinfo);
    switch (guard.stopped) {
      case JpegGuard::Stop::kDeadline: return Outcome::kDeadline;
      case JpegGuard::Stop::kScans: return Outcome::kScans;
      default: return Outcome::kCorrupt;
    }
  }
  guard.create(cinfo);
  jpeg_mem_src(&cinfo, d.data, static_cast<unsigned long>(d.size));
  if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
    jpeg_destroy_decompress(&cinfo);
    return Outcome::kCorrupt;
  }
  // The limits were checked on the sniffed frame: libjpeg must be decoding that one.
  if (static_cast<int>(cinfo.image_width) != d.width ||
      static_cast<int>(cinfo.image_height) != d.height) {
    jpeg_destroy_decompress(&cinfo);
    return Outcome::kMismatch;
  }
  if (d.max_memory_bytes > 0) {
    if (cinfo.progressive_mode && jpeg_coefficient_bytes(cinfo) > d.max_memory_bytes) {
      jpeg_destroy_decompress(&cinfo);
      return Outcome::kTooMuchMemory;
    }
    // libjpeg's pools are held to the same bound (beyond it: an error, never a backing store).
    cinfo.mem->max_memory_to_use = static_cast<long>(d.max_memory_bytes);
  }
  const bool cmyk = cinfo.num_components == 4;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_BGR;
  cinfo.scale_num = 1;
  cinfo.scale_denom = static_cast<unsigned>(d.shrink);
  jpeg_calc_output_dimensions(&cinfo);
  *d.out =
      cv::Mat(static_cast<int>(cinfo.output_height), static_cast<int>(cinfo.output_width), CV_8UC3);
  if (cmyk) d.cmyk_row->resize(static_cast<std::size_t>(cinfo.output_width) * 4);
  jpeg_start_decompress(&cinfo);
  while (cinfo.output_scanline < cinfo.output_height) {
    const int y = static_cast<int>(cinfo.output_scanline);
    JSAMPROW row = cmyk ? d.cmyk_row->data() : d.out->ptr<JSAMPLE>(y);
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) break;
    if (cmyk) {
      void* through = cinfo.saw_Adobe_marker ? d.cmyk_inverted : d.cmyk_plain;
      if (through) {
        convert_cmyk_row(through, row, d.out->ptr<std::uint8_t>(y), d.out->cols);
      } else {
        cmyk_row_to_bgr(row, d.out->ptr<std::uint8_t>(y), d.out->cols);
      }
    }
  }
  // Rows past a truncation are grey, as libjpeg fills them; what follows the last row (more
  // scans, trailing bytes) is never read.
  jpeg_abort_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return Outcome::kOk;
}

}  // namespace

Status deadline_passed() {
  return {Code::kOverloaded, "the thumbnail took longer than the request deadline"};
}

Result<cv::Mat> decode_jpeg(std::span<const std::uint8_t> data, const ImageInfo& info, int shrink,
                            const DecodeBudget& budget) {
  cv::Mat out;
  std::vector<JSAMPLE> cmyk_row;
  JpegGuard guard;
  guard.deadline = budget.deadline;
  guard.max_scans = budget.max_scans;
  // A CMYK JPEG's own profile says what its inks look like; made (or found) before libjpeg runs.
  std::shared_ptr<void> plain, inverted;
  if (info.cmyk && budget.manage_colour) {
    if (std::optional<std::string> profile = embedded_icc_profile(data, ImageFormat::kJpeg)) {
      plain = cmyk_to_srgb(*profile, false);
      inverted = cmyk_to_srgb(*profile, true);
    }
  }
  const Decode decode{
      data.data(), data.size(), info.width,  info.height,   shrink, budget.max_memory_bytes,
      &out,        &cmyk_row,   plain.get(), inverted.get()};
  switch (run(decode, guard)) {
    case Outcome::kOk: return out;
    case Outcome::kMismatch:
      return Status(Code::kUnsupportedMedia, "the JPEG's frame headers disagree about its size");
    case Outcome::kTooMuchMemory:
      return Status(Code::kTooLarge,
                    "the progressive JPEG needs more decoder memory than "
                    "limits.max_decoder_memory_bytes (" +
                        std::to_string(budget.max_memory_bytes) + " bytes)");
    case Outcome::kDeadline: return deadline_passed();
    case Outcome::kScans:
      return Status(Code::kUnsupportedMedia,
                    "the JPEG has more than " + std::to_string(budget.max_scans) + " scans");
    case Outcome::kCorrupt: break;
  }
  return Status(Code::kUnsupportedMedia, "the image data is corrupt");
}

}  // namespace thimble::transform
