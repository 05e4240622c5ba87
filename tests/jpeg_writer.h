// write_jpeg(): JPEGs in layouts OpenCV cannot write (CMYK, progressive 4:4:4), through
// libjpeg-turbo directly. For tests and fuzz seeds.
#pragma once

#include <jpeglib.h>

#include <cstdio>  // jpeglib.h needs FILE
#include <cstdlib>
#include <opencv2/core.hpp>
#include <string>

namespace thimble::test {

// `image` is 8-bit BGR, grey, or 4-channel values stored as CMYK (written with an Adobe marker,
// as Photoshop does). `full_chroma`: 4:4:4 instead of libjpeg's default 4:2:0.
inline std::string write_jpeg(const cv::Mat& image, int quality = 90, bool progressive = false,
                              bool full_chroma = false) {
  jpeg_compress_struct info{};
  jpeg_error_mgr errors{};
  info.err = jpeg_std_error(&errors);
  jpeg_create_compress(&info);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&info, &buffer, &size);
  info.image_width = static_cast<JDIMENSION>(image.cols);
  info.image_height = static_cast<JDIMENSION>(image.rows);
  info.input_components = image.channels();
  info.in_color_space = image.channels() == 4   ? JCS_CMYK
                        : image.channels() == 3 ? JCS_EXT_BGR
                                                : JCS_GRAYSCALE;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  if (full_chroma) {
    for (int c = 0; c < info.num_components; ++c) {
      info.comp_info[c].h_samp_factor = 1;
      info.comp_info[c].v_samp_factor = 1;
    }
  }
  if (progressive) jpeg_simple_progression(&info);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW rows[1] = {
        const_cast<JSAMPROW>(image.ptr<std::uint8_t>(static_cast<int>(info.next_scanline)))};
    jpeg_write_scanlines(&info, rows, 1);
  }
  jpeg_finish_compress(&info);
  std::string out(reinterpret_cast<char*>(buffer), size);
  jpeg_destroy_compress(&info);
  std::free(buffer);
  return out;
}

}  // namespace thimble::test
