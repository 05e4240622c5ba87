// Originals written to get past a decoder's limits, for the hostile-input table and the fuzz
// seeds: each is small on disk and was once expensive to decode.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>

#include "image_writer.h"

namespace thimble::test {

// The segments of `jpeg` with `marker` (each from its 0xFF), joined; markers before the first
// SOS only.
inline std::string jpeg_segment(const std::string& jpeg, std::uint8_t marker) {
  std::string out;
  for (std::size_t i = 2; i + 4 <= jpeg.size() && static_cast<std::uint8_t>(jpeg[i]) == 0xFF;) {
    const auto found = static_cast<std::uint8_t>(jpeg[i + 1]);
    const std::size_t length =
        static_cast<std::uint8_t>(jpeg[i + 2]) << 8 | static_cast<std::uint8_t>(jpeg[i + 3]);
    if (found == 0xDA) break;
    if (found == marker) out += jpeg.substr(i, 2 + length);
    i += 2 + length;
  }
  return out;
}

inline std::string be16_bytes(int v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v)};
}

// A real `width` x `height` frame hidden from a sniffer that reads `FF 00` as a segment with a
// length: after SOI, `FF 00 <len>` spans the real frame header, and what libjpeg reads as an APP1
// segment right after it holds a fake 16x16 frame header, where the sniffer lands. libjpeg skips
// `FF 00` and its two length bytes as junk, reads the real frame, and skips the fake one inside
// the APP1. The tables and scan of a real 16x16 JPEG follow.
inline std::string jpeg_with_hidden_frame(int width, int height, bool progressive) {
  const std::string small =
      write_jpeg(cv::Mat(16, 16, CV_8UC3, cv::Scalar(40, 120, 200)), 90, progressive);
  const std::uint8_t sof = progressive ? 0xC2 : 0xC0;
  const std::string fake = jpeg_segment(small, sof);
  std::string real = fake;
  real.replace(5, 2, be16_bytes(height));
  real.replace(7, 2, be16_bytes(width));
  const std::size_t at = small.find(fake);
  const std::string rest = small.substr(2, at - 2) + small.substr(at + fake.size());
  const std::string app1 = "\xFF\xE1" + be16_bytes(static_cast<int>(fake.size()) + 2);
  return "\xFF\xD8" + std::string("\xFF\x00", 2) +
         be16_bytes(2 + static_cast<int>(real.size() + app1.size())) + real + app1 + fake + rest;
}

// A grey `width` x `height` progressive JPEG with one DC scan (its data cut short: libjpeg fills
// the rest) and `empty_scans` AC scans of 10 bytes each with no data, every one a full pass over
// the image's coefficients.
inline std::string jpeg_with_empty_scans(int width, int height, int empty_scans) {
  const std::string baseline = write_jpeg(cv::Mat(8, 8, CV_8UC1, cv::Scalar(128)), 90);
  std::string out = "\xFF\xD8" + jpeg_segment(baseline, 0xDB);
  out += std::string("\xFF\xC2\x00\x0B\x08", 5) + be16_bytes(height) + be16_bytes(width) +
         std::string("\x01\x01\x11\x00", 4);
  out += jpeg_segment(baseline, 0xC4);  // the DC and AC Huffman tables
  out += std::string("\xFF\xDA\x00\x08\x01\x01\x00\x00\x00\x00", 10) + std::string(16, '\0');
  for (int i = 0; i < empty_scans; ++i) {
    out += std::string("\xFF\xDA\x00\x08\x01\x01\x00\x01\x3F\x00", 10);
  }
  return out + "\xFF\xD9";
}

// A `width` x `height` grey PNG whose one zlib stream goes on with `extra` bytes of zeros after
// the last row: small on disk, and every byte of it inflated by a decoder that reads to the end.
inline std::string png_inflating_past_rows(int width, int height, std::size_t extra) {
  std::string rows;
  for (int y = 0; y < height; ++y) rows += std::string(1, '\0') + std::string(width, '\x80');
  return png_file(width, height, 0, 8, rows + std::string(extra, '\0'));
}

}  // namespace thimble::test
