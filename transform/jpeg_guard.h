// What every libjpeg decode in Thimble shares (and its encode, the first two): fatal errors jump
// back instead of exiting, warnings are counted quietly, and a progress monitor ends the decode at the request's deadline or after
// too many scans, with the reason kept for the caller. libjpeg-turbo's own tools bound scans the
// same way (djpeg -maxscans): a progressive file of thousands of tiny empty scans costs a full
// pass over the coefficients for each.
//
// Internal to transform/. One guard per decode; not shared between threads.
#pragma once

#include <chrono>
#include <csetjmp>
#include <cstdio>

// libjpeg's header needs FILE and size_t declared first.
#include <jpeglib.h>

#include "conf/base/deadline.h"

namespace thimble::transform {

struct JpegGuard {
  enum class Stop { kNone, kDeadline, kScans };

  jpeg_error_mgr errors;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  Deadline deadline;
  int max_scans = 100;
  Stop stopped = Stop::kNone;
  j_decompress_ptr cinfo = nullptr;

  // Installs the error manager on `decompress`, creates it, then installs the progress monitor
  // (jpeg_create_decompress clears every field but `err`).
  void create(jpeg_decompress_struct& decompress) {
    cinfo = &decompress;
    decompress.err = jpeg_std_error(&errors);
    errors.error_exit = &JpegGuard::jump_out;
    errors.output_message = &JpegGuard::stay_quiet;
    jpeg_create_decompress(&decompress);
    progress.progress_monitor = &JpegGuard::monitor;
    decompress.progress = &progress;
  }

  // The same for an encode, without the monitor: an encode is bounded by the thumbnail's size.
  void create(jpeg_compress_struct& compress) {
    compress.err = jpeg_std_error(&errors);
    errors.error_exit = &JpegGuard::jump_out;
    errors.output_message = &JpegGuard::stay_quiet;
    jpeg_create_compress(&compress);
  }

  [[noreturn]] static void jump_out(j_common_ptr common) {
    std::longjmp(reinterpret_cast<JpegGuard*>(common->err)->jump, 1);
  }
  static void stay_quiet(j_common_ptr) {}
  // Called by libjpeg every few rows of every pass, and while it reads scans.
  static void monitor(j_common_ptr common) {
    auto* guard = reinterpret_cast<JpegGuard*>(common->err);
    if (guard->cinfo->input_scan_number > guard->max_scans) {
      guard->stopped = Stop::kScans;
      std::longjmp(guard->jump, 1);
    }
    if (guard->deadline.passed()) {
      guard->stopped = Stop::kDeadline;
      std::longjmp(guard->jump, 1);
    }
  }
};

// The bytes of whole-image coefficient storage libjpeg allocates for this header when it
// buffers the image (progressive files): 64 coefficients of 2 bytes for every block of every
// component. Valid after jpeg_read_header.
inline unsigned long long jpeg_coefficient_bytes(const jpeg_decompress_struct& cinfo) {
  unsigned long long blocks = 0;
  for (int c = 0; c < cinfo.num_components; ++c) {
    const jpeg_component_info& component = cinfo.comp_info[c];
    // Rounded up to whole iMCU rows and columns, as libjpeg allocates them.
    const unsigned long long columns = (component.width_in_blocks + component.h_samp_factor - 1) /
                                       component.h_samp_factor * component.h_samp_factor;
    const unsigned long long rows = (component.height_in_blocks + component.v_samp_factor - 1) /
                                    component.v_samp_factor * component.v_samp_factor;
    blocks += columns * rows;
  }
  return blocks * 64 * sizeof(JCOEF);
}

}  // namespace thimble::transform
