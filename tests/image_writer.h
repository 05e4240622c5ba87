// Images in layouts OpenCV cannot write, for tests and fuzz seeds: JPEG through libjpeg-turbo
// directly (CMYK, progressive 4:4:4), PNG by hand (palette, grey + alpha, any extra chunk).
#pragma once

#include <jpeglib.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>  // jpeglib.h needs FILE
#include <cstdlib>
#include <opencv2/core.hpp>
#include <string>

namespace thimble::test {

// `image` is 8-bit BGR, grey, or 4-channel values stored as CMYK (written with an Adobe marker,
// as Photoshop does). `full_chroma`: 4:4:4 instead of libjpeg's default 4:2:0. `icc`: an ICC
// profile to embed (APP2 segments), none when empty.
inline std::string write_jpeg(const cv::Mat& image, int quality = 90, bool progressive = false,
                              bool full_chroma = false, const std::string& icc = {}) {
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
  if (!icc.empty()) {
    jpeg_write_icc_profile(&info, reinterpret_cast<const JOCTET*>(icc.data()),
                           static_cast<unsigned int>(icc.size()));
  }
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

inline std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline std::string zlib_compress(const std::string& bytes) {
  uLongf size = compressBound(static_cast<uLong>(bytes.size()));
  std::string compressed(size, '\0');
  compress(reinterpret_cast<Bytef*>(compressed.data()), &size,
           reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uLong>(bytes.size()));
  compressed.resize(size);
  return compressed;
}

// One PNG chunk: length, type, data, CRC.
inline std::string png_chunk(const std::string& type, const std::string& data) {
  const std::string body = type + data;
  auto crc = static_cast<std::uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
  return be32(static_cast<std::uint32_t>(data.size())) + body + be32(crc);
}

// A PNG of `rows` (each a filter byte and the pixels), with `extra_chunks` before the pixels.
inline std::string png_file(int width, int height, int colour_type, int depth,
                            const std::string& rows, const std::string& extra_chunks = {}) {
  std::string header =
      be32(static_cast<std::uint32_t>(width)) + be32(static_cast<std::uint32_t>(height)) +
      std::string{static_cast<char>(depth), static_cast<char>(colour_type), 0, 0, 0};
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", header) + extra_chunks +
         png_chunk("IDAT", zlib_compress(rows)) + png_chunk("IEND", "");
}

}  // namespace thimble::test
