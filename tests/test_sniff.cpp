// transform/sniff: header facts without decoding, on real photographs and crafted headers.
#include <doctest/doctest.h>

#include "support.h"
#include "transform/sniff.h"

using namespace thimble;
using namespace thimble::transform;

namespace {

Result<ImageInfo> sniff_string(const std::string& bytes) {
  return sniff(test::as_bytes(bytes));
}

// A baseline JPEG that is only a header: SOI, SOF0 claiming `w`x`h`, SOS, EOI.
std::string jpeg_header(int w, int h, std::string app1 = {}) {
  std::string s = "\xFF\xD8";
  s += app1;
  s += std::string("\xFF\xC0\x00\x11\x08", 5);
  s += static_cast<char>(h >> 8);
  s += static_cast<char>(h & 255);
  s += static_cast<char>(w >> 8);
  s += static_cast<char>(w & 255);
  s += std::string("\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);
  s += std::string("\xFF\xDA\x00\x08\x01\x01\x00\x00\x3f\x00\xFF\xD9", 12);
  return s;
}

// An APP1 Exif segment holding only an Orientation tag, big- or little-endian.
std::string exif_app1(int orientation, bool little_endian) {
  std::string tiff = little_endian ? std::string("II\x2a\x00\x08\x00\x00\x00", 8)
                                   : std::string("MM\x00\x2a\x00\x00\x00\x08", 8);
  auto u16 = [&](int v) {
    return little_endian ? std::string{static_cast<char>(v & 255), static_cast<char>(v >> 8)}
                         : std::string{static_cast<char>(v >> 8), static_cast<char>(v & 255)};
  };
  tiff += u16(1);                // one entry
  tiff += u16(0x0112) + u16(3);  // Orientation, SHORT
  tiff += little_endian ? std::string("\x01\x00\x00\x00", 4) : std::string("\x00\x00\x00\x01", 4);
  tiff += u16(orientation) + u16(0);  // value inline
  tiff += std::string(4, '\0');       // next IFD
  std::string payload = std::string("Exif\0\0", 6) + tiff;
  std::size_t length = payload.size() + 2;
  return std::string("\xFF\xE1", 2) + static_cast<char>(length >> 8) +
         static_cast<char>(length & 255) + payload;
}

}  // namespace

TEST_CASE("real photographs report their stored size, format and orientation") {
  struct Row {
    const char* file;
    ImageFormat format;
    int width, height, orientation;
    bool alpha, progressive;
  };
  const Row rows[] = {
      {"large/Bridge_by_Sander_Klootwijk.jpg", ImageFormat::kJpeg, 4352, 2448, 1, false, true},
      {"large/Kleiber_by_Lukas_Baubkus.jpg", ImageFormat::kJpeg, 6028, 3391, 1, false, false},
      {"medium/mate_Storm.jpg", ImageFormat::kJpeg, 1920, 1280, 1, false, false},
      {"png/mate_Gulp_alpha.png", ImageFormat::kPng, 1920, 1200, 1, true, false},
      {"png/plasma_Canopee_3840x2160.png", ImageFormat::kPng, 3840, 2160, 1, false, false},
      {"webp/mate_Gulp_alpha.q80.webp", ImageFormat::kWebp, 1920, 1200, 1, true, false},
      {"webp/sunset_by_Aitzol_Berasategi.q80.webp", ImageFormat::kWebp, 4272, 2848, 1, false,
       false},
      {"exif/Landscape_1.jpg", ImageFormat::kJpeg, 1800, 1200, 1, false, false},
      {"exif/Landscape_3.jpg", ImageFormat::kJpeg, 1800, 1200, 3, false, false},
      {"exif/Landscape_6.jpg", ImageFormat::kJpeg, 1200, 1800, 6, false, false},
      {"exif/Landscape_8.jpg", ImageFormat::kJpeg, 1200, 1800, 8, false, false},
  };
  for (const auto& row : rows) {
    std::string file(row.file);
    CAPTURE(file);
    auto info = sniff_string(test::read_file(test::corpus(row.file)));
    REQUIRE_MESSAGE(info.ok(), info.status().message());
    CHECK(info->format == row.format);
    CHECK(info->width == row.width);
    CHECK(info->height == row.height);
    CHECK(info->orientation == row.orientation);
    CHECK(info->has_alpha == row.alpha);
    CHECK(info->progressive == row.progressive);
  }
}

TEST_CASE("all eight EXIF orientations are read, and orientations 5 to 8 swap the axes") {
  for (int n = 1; n <= 8; ++n) {
    CAPTURE(n);
    auto info =
        sniff_string(test::read_file(test::corpus("exif/Landscape_" + std::to_string(n) + ".jpg")));
    REQUIRE(info.ok());
    CHECK(info->orientation == n);
    CHECK(info->swaps_axes() == (n >= 5));
  }
}

TEST_CASE("a tiny JPEG claiming 30000x30000 is measured from its header alone") {
  std::string bomb = jpeg_header(30000, 30000);
  CHECK(bomb.size() < 64);
  auto info = sniff_string(bomb);
  REQUIRE(info.ok());
  CHECK(info->width == 30000);
  CHECK(info->height == 30000);
}

TEST_CASE("EXIF orientation is read in both byte orders and absurd values fall back to 1") {
  CHECK(sniff_string(jpeg_header(10, 20, exif_app1(6, true)))->orientation == 6);
  CHECK(sniff_string(jpeg_header(10, 20, exif_app1(7, false)))->orientation == 7);
  CHECK(sniff_string(jpeg_header(10, 20, exif_app1(9, true)))->orientation == 1);
  CHECK(sniff_string(jpeg_header(10, 20, exif_app1(0, false)))->orientation == 1);
  std::string broken = exif_app1(6, true);
  broken[16] = '\x7f';  // IFD offset far outside the segment
  CHECK(sniff_string(jpeg_header(10, 20, broken))->orientation == 1);
}

TEST_CASE("empty, truncated and non-image inputs are unsupported media") {
  const std::string png = test::read_file(test::corpus("png/mate_Gulp_alpha.png"));
  const std::string webp = test::read_file(test::corpus("webp/mate_Gulp_alpha.q80.webp"));
  const std::string inputs[] = {
      "",
      "hello, I am a text file named photo.jpg\n",
      jpeg_header(100, 100).substr(0, 7),
      std::string("\xFF\xD8\xFF\xD9", 4),
      jpeg_header(0, 100),
      png.substr(0, 20),
      webp.substr(0, 16),
      std::string("RIFF\x04\x00\x00\x00WEBP", 12),
      std::string("BM\x00\x00", 4),
  };
  for (const auto& input : inputs) {
    CAPTURE(input.size());
    auto info = sniff_string(input);
    REQUIRE_FALSE(info.ok());
    CHECK(info.status().code() == Code::kUnsupportedMedia);
  }
}

TEST_CASE("GIF headers: size, frames, loop count and transparency, without decoding") {
  // A 320x240 screen with a two-colour table and one 1x1 frame with a transparent colour.
  const std::string screen("GIF89a\x40\x01\xf0\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00", 19);
  const std::string control("\x21\xf9\x04\x01\x0a\x00\x00\x00", 8);
  const std::string frame("\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00", 15);
  const std::string loops("\x21\xff\x0bNETSCAPE2.0\x03\x01\x05\x00\x00", 19);
  auto still = sniff_string(screen + control + frame + ";");
  REQUIRE(still.ok());
  CHECK(still->format == ImageFormat::kGif);
  CHECK(still->width == 320);
  CHECK(still->height == 240);
  CHECK(still->frames == 1);
  CHECK_FALSE(still->animated);
  CHECK(still->has_alpha);
  auto animated = sniff_string(screen + loops + frame + control + frame + frame + ";");
  REQUIRE(animated.ok());
  CHECK(animated->frames == 3);
  CHECK(animated->animated);
  CHECK(animated->loop_count == 5);
  // Cut inside the third frame: the two whole ones count.
  auto cut = sniff_string(screen + frame + frame + frame.substr(0, 12));
  REQUIRE(cut.ok());
  CHECK(cut->frames == 2);
  CHECK_FALSE(sniff_string(screen).ok());
  CHECK_FALSE(sniff_string(screen + "\x99").ok());
}
