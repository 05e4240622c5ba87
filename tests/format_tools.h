// Test images in HEIC, AVIF, GIF and animated WebP, made by the formats' own command-line tools
// (heif-enc, avifenc, gifsicle, img2webp from Debian), and those tools' reports on Thimble's
// output (avifdec, gifsicle --info, webpmux -info).
#pragma once

#include <doctest/doctest.h>
#include <gif_lib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support.h"

namespace thimble::test {

// Runs `command` (through the shell); the test fails when it does.
inline void run(const std::string& command) {
  const std::string quiet = command + " > /dev/null 2>&1";
  REQUIRE_MESSAGE(std::system(quiet.c_str()) == 0, "failed: " << command);
}

// What `command` prints on its standard output (and error).
inline std::string output_of(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  pclose(pipe);
  return out;
}

// Writes `image` as PNG into `dir` and returns its path.
inline std::filesystem::path png_in(const TempDir& dir, const std::string& name,
                                    const cv::Mat& image) {
  const std::filesystem::path path = dir.path() / (name + ".png");
  REQUIRE(cv::imwrite(path.string(), image));
  return path;
}

// A frame of solid `colour` with a `square` of another colour, for animations whose frames differ.
inline cv::Mat frame(int width, int height, cv::Scalar colour, cv::Rect square,
                     cv::Scalar square_colour) {
  cv::Mat image(height, width, CV_8UC3, colour);
  image(square).setTo(square_colour);
  return image;
}

// One frame of a GIF written by write_gif(): its pixels (at most 256 colours), where it goes on
// the canvas, how long it shows, its disposal (giflib's DISPOSE_*), and a colour drawn as
// transparent.
struct GifFrame {
  cv::Mat image;  // 8-bit BGR
  cv::Point at;
  int delay_cs = 10;
  int disposal = DISPOSE_DO_NOT;
  std::optional<cv::Vec3b> transparent;
};

// A GIF written with giflib directly, each frame with its exact colours as a local table.
inline std::string write_gif(int width, int height, const std::vector<GifFrame>& frames,
                             std::optional<int> loop_count) {
  std::string out;
  int error = 0;
  GifFileType* gif = EGifOpen(
      &out,
      [](GifFileType* g, const GifByteType* bytes, int n) {
        static_cast<std::string*>(g->UserData)
            ->append(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(n));
        return n;
      },
      &error);
  REQUIRE(gif != nullptr);
  EGifSetGifVersion(gif, true);
  REQUIRE(EGifPutScreenDesc(gif, width, height, 8, 0, nullptr) != GIF_ERROR);
  if (loop_count) {
    const std::uint8_t loops[3] = {1, static_cast<std::uint8_t>(*loop_count & 0xff),
                                   static_cast<std::uint8_t>(*loop_count >> 8)};
    EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE);
    EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0");
    EGifPutExtensionBlock(gif, 3, loops);
    EGifPutExtensionTrailer(gif);
  }
  for (const GifFrame& f : frames) {
    std::map<std::uint32_t, int> index;
    std::vector<GifPixelType> pixels;
    for (int y = 0; y < f.image.rows; ++y) {
      for (int x = 0; x < f.image.cols; ++x) {
        const cv::Vec3b p = f.image.at<cv::Vec3b>(y, x);
        const std::uint32_t key = p[0] | p[1] << 8 | p[2] << 16;
        auto found = index.try_emplace(key, static_cast<int>(index.size())).first;
        pixels.push_back(static_cast<GifPixelType>(found->second));
      }
    }
    REQUIRE(index.size() <= 256);
    int size = 2;
    while (size < static_cast<int>(index.size())) size *= 2;
    ColorMapObject* map = GifMakeMapObject(size, nullptr);
    int transparent = NO_TRANSPARENT_COLOR;
    for (const auto& [key, i] : index) {
      map->Colors[i] = {static_cast<GifByteType>(key >> 16), static_cast<GifByteType>(key >> 8),
                        static_cast<GifByteType>(key)};
      if (f.transparent &&
          key == static_cast<std::uint32_t>((*f.transparent)[0] | (*f.transparent)[1] << 8 |
                                            (*f.transparent)[2] << 16)) {
        transparent = i;
      }
    }
    GraphicsControlBlock control{};
    control.DisposalMode = f.disposal;
    control.DelayTime = f.delay_cs;
    control.TransparentColor = transparent;
    GifByteType extension[4];
    EGifGCBToExtension(&control, extension);
    EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, extension);
    REQUIRE(EGifPutImageDesc(gif, f.at.x, f.at.y, f.image.cols, f.image.rows, false, map) !=
            GIF_ERROR);
    REQUIRE(EGifPutLine(gif, pixels.data(), static_cast<int>(pixels.size())) != GIF_ERROR);
    GifFreeMapObject(map);
  }
  REQUIRE(EGifCloseFile(gif, &error) != GIF_ERROR);
  return out;
}

// `image` encoded by an external tool: `command` is given the PNG's path and the output's path.
inline std::string made_by(const std::string& command, const cv::Mat& image,
                           const std::string& extension) {
  TempDir dir;
  const std::filesystem::path in = png_in(dir, "in", image);
  const std::filesystem::path out = dir.path() / ("out" + extension);
  run(command + " " + in.string() + " " + out.string());
  return read_file(out);
}

// An AVIF of `image` by avifenc (fast, near-lossless), with more avifenc `flags`.
inline std::string avif_of(const cv::Mat& image, const std::string& flags = "") {
  return made_by("avifenc -s 10 --min 4 --max 8 " + flags, image, ".avif");
}

// A HEIC of `image` by heif-enc, with more heif-enc `flags`.
inline std::string heic_of(const cv::Mat& image, const std::string& flags = "") {
  return made_by("sh -c 'heif-enc -q 80 " + flags + " \"$0\" -o \"$1\"'", image, ".heic");
}

// A HEIC made by heif-enc from `jpeg` (which carries the JPEG's ICC profile over).
inline std::string heic_of_jpeg(const std::string& jpeg) {
  TempDir dir;
  write_file(dir.path() / "in.jpg", jpeg);
  run("heif-enc -q 80 " + (dir.path() / "in.jpg").string() + " -o " +
      (dir.path() / "out.heic").string());
  return read_file(dir.path() / "out.heic");
}

// `file` with `bytes` written `offset` bytes after the first `box` type (4 letters) it holds.
inline std::string patched(std::string file, const std::string& box, std::size_t offset,
                           const std::string& bytes) {
  const std::size_t at = file.find(box);
  REQUIRE_MESSAGE(at != std::string::npos, "no " << box << " box");
  REQUIRE(at + offset + bytes.size() <= file.size());
  file.replace(at + offset, bytes.size(), bytes);
  return file;
}

// A grid HEIF (avifenc --grid) whose first tile reference points back at the grid itself.
inline std::string grid_referring_to_itself(const cv::Mat& image) {
  const std::string grid = avif_of(image, "--grid 2x2");
  // iref (full box) holds `dimg`: from (u16), count (u16), tiles (u16 each).
  const std::size_t dimg = grid.find("dimg");
  REQUIRE(dimg != std::string::npos);
  return patched(grid, "dimg", 8, grid.substr(dimg + 4, 2));
}

// A GIF whose screen claims `width` x `height`, with one 1x1 frame.
inline std::string gif_claiming(int width, int height) {
  GifFrame dot;
  dot.image = cv::Mat(1, 1, CV_8UC3, cv::Scalar(0, 0, 0));
  return write_gif(width, height, {dot}, std::nullopt);
}

// A looping GIF of `count` 1x1 frames on a `side` x `side` screen.
inline std::string gif_of_frames(int count, int side) {
  GifFrame dot;
  dot.image = cv::Mat(1, 1, CV_8UC3, cv::Scalar(0, 0, 0));
  std::vector<GifFrame> frames(static_cast<std::size_t>(count), dot);
  return write_gif(side, side, frames, 0);
}

}  // namespace thimble::test
