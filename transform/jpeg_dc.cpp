#include "transform/jpeg_dc.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>

// libjpeg's header needs FILE and size_t declared first.
#include <jpeglib.h>

namespace thimble::transform {
namespace {

// libjpeg reports fatal errors through error_exit, which must not return: jump back to the decode.
struct ErrorManager {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
};

[[noreturn]] void jump_out(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<ErrorManager*>(cinfo->err)->jump, 1);
}

void stay_quiet(j_common_ptr) {}

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
bool decode_dc_into(const std::uint8_t* data, std::size_t size, cv::Mat& out) {
  jpeg_decompress_struct cinfo;
  ErrorManager errors;
  cinfo.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = jump_out;
  errors.manager.output_message = stay_quiet;
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  bool ok = jpeg_read_header(&cinfo, TRUE) == JPEG_HEADER_OK && cinfo.progressive_mode &&
            (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB ||
             cinfo.jpeg_color_space == JCS_GRAYSCALE);
  if (ok) {
    cinfo.scale_num = 1;
    cinfo.scale_denom = 8;
    cinfo.out_color_space = JCS_EXT_BGR;
    cinfo.buffered_image = TRUE;
    // Smoothing would invent AC coefficients for the blocks; a full decode of a complete file
    // does not smooth, and the result must be the same.
    cinfo.do_block_smoothing = FALSE;
    // With chroma subsampled on both axes (4:2:0), libjpeg decodes chroma at 1/8 scale with a 2x2
    // inverse DCT, which needs AC coefficients too: only files whose every component uses the
    // 1x1 (DC-only) transform qualify.
    jpeg_calc_output_dimensions(&cinfo);
    for (int c = 0; c < cinfo.num_components; ++c) {
      if (scaled_size(cinfo.comp_info[c]) != 1) ok = false;
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
      if (errors.manager.num_warnings > 0) break;
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
                                             int height) {
  if (width <= 0 || height <= 0) return std::nullopt;
  // libjpeg's 1/8-scale size: each dimension divided by 8, rounded up.
  cv::Mat out((height + 7) / 8, (width + 7) / 8, CV_8UC3);
  if (!decode_dc_into(data.data(), data.size(), out)) return std::nullopt;
  return out;
}

}  // namespace thimble::transform
