#include "transform/jpeg_dc.h"

#include <algorithm>

#include "transform/jpeg_guard.h"

namespace thimble::transform {
namespace {

// Whether every component's DC coefficient is known well enough for the 1/8-scale image: fully,
// or with successive-approximation bits still outstanding whose worth is at most
// kMaxDcError grey levels (a coefficient step of q is q/8 levels in the 1x1 transform). Valid
// between scans in buffered-image mode.
constexpr int kMaxDcError = 2;
bool dc_known(const jpeg_decompress_struct& cinfo) {
  for (int c = 0; c < cinfo.num_components; ++c) {
    const int missing_bits = cinfo.coef_bits[c][0];
    if (missing_bits < 0) return false;  // no DC scan for this component yet
    if (missing_bits == 0) continue;
    const JQUANT_TBL* table = cinfo.comp_info[c].quant_table;
    if (table == nullptr) return false;
    if (((1 << missing_bits) - 1) * table->quantval[0] > 8 * kMaxDcError) return false;
  }
  return true;
}

// The size of the inverse DCT a component is decoded with (8 at full scale).
int scaled_size(const jpeg_component_info& component) {
#if JPEG_LIB_VERSION >= 70
  return std::max(component.DCT_h_scaled_size, component.DCT_v_scaled_size);
#else
  return component.DCT_scaled_size;
#endif
}

// The libjpeg part, kept free of objects with destructors: longjmp skips destructors. Fills
// `out` (allocated by the caller at the 1/8-scale size) and returns true, or returns false.
bool decode_dc_into(const std::uint8_t* data, std::size_t size, int width, int height,
                    std::uint64_t max_memory_bytes, JpegGuard& guard, cv::Mat& out) {
  jpeg_decompress_struct cinfo;
  if (setjmp(guard.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  guard.create(cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  // The frame libjpeg reads must be the sniffed one, and its coefficients within the budget,
  // before anything is allocated for it (the ordinary decode then says what is wrong).
  bool ok = jpeg_read_header(&cinfo, TRUE) == JPEG_HEADER_OK && cinfo.progressive_mode &&
            static_cast<int>(cinfo.image_width) == width &&
            static_cast<int>(cinfo.image_height) == height &&
            (max_memory_bytes == 0 || jpeg_coefficient_bytes(cinfo) <= max_memory_bytes) &&
            (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB ||
             cinfo.jpeg_color_space == JCS_GRAYSCALE);
  if (ok && max_memory_bytes > 0)
    cinfo.mem->max_memory_to_use = static_cast<long>(max_memory_bytes);
  if (ok) {
    cinfo.scale_num = 1;
    cinfo.scale_denom = 8;
    cinfo.out_color_space = JCS_EXT_BGR;
    cinfo.buffered_image = TRUE;
    // Smoothing would invent AC coefficients for the blocks; a full decode of a complete file
    // does not smooth, and the result must be the same.
    cinfo.do_block_smoothing = FALSE;
    // With chroma subsampled on both axes (4:2:0), libjpeg decodes chroma at 1/8 scale with a 2x2
    // inverse DCT: from the DC alone it is flat over the block (jpeg_dc.h). Larger transforms
    // (4x subsampling on both axes) are left to the ordinary decode.
    jpeg_calc_output_dimensions(&cinfo);
    for (int c = 0; c < cinfo.num_components; ++c) {
      if (scaled_size(cinfo.comp_info[c]) > 2) ok = false;
    }
  }
  if (ok) {
    ok = jpeg_start_decompress(&cinfo) && static_cast<int>(cinfo.output_width) == out.cols &&
         static_cast<int>(cinfo.output_height) == out.rows && cinfo.output_components == 3;
  }
  if (ok) {
    // Scans until the DC is known well enough; coef_bits is updated when a scan starts, so it
    // is read only once a scan has been read to its end.
    ok = false;
    while (true) {
      const int status = jpeg_consume_input(&cinfo);
      // A warning means damaged or missing data, which libjpeg replaces with zeros: the
      // ordinary decode must handle (and report) such a file.
      if (guard.errors.num_warnings > 0) break;
      if (status == JPEG_SCAN_COMPLETED && dc_known(cinfo)) {
        ok = true;
        break;
      }
      if (status == JPEG_REACHED_EOI || status == JPEG_SUSPENDED) break;
    }
  }
  if (ok) {
    jpeg_start_output(&cinfo, cinfo.input_scan_number);
    while (cinfo.output_scanline < cinfo.output_height) {
      JSAMPROW row = out.ptr<JSAMPLE>(static_cast<int>(cinfo.output_scanline));
      jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_output(&cinfo);
  }
  jpeg_destroy_decompress(&cinfo);  // also abandons the scans never read
  return ok;
}

}  // namespace

std::optional<cv::Mat> decode_progressive_dc(std::span<const std::uint8_t> data, int width,
                                             int height, const DecodeBudget& budget) {
  if (width <= 0 || height <= 0) return std::nullopt;
  // libjpeg's 1/8-scale size: each dimension divided by 8, rounded up.
  cv::Mat out((height + 7) / 8, (width + 7) / 8, CV_8UC3);
  JpegGuard guard;
  guard.deadline = budget.deadline;
  guard.max_scans = budget.max_scans;
  if (!decode_dc_into(data.data(), data.size(), width, height, budget.max_memory_bytes, guard,
                      out)) {
    return std::nullopt;
  }
  return out;
}

}  // namespace thimble::transform
