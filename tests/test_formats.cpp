// HEIC, AVIF, GIF and animated WebP originals, AVIF and GIF thumbnails: test images made by the
// formats' own tools from corpus photographs, Thimble's output checked by the same tools.
#include <doctest/doctest.h>
#include <libheif/heif.h>

#include <cstdio>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "format_tools.h"
#include "icc_profiles.h"
#include "render_support.h"
#include "support.h"
#include "transform/animated.h"
#include "transform/auto_quality.h"
#include "transform/decode.h"
#include "transform/encode.h"
#include "transform/meta.h"
#include "transform/pipeline.h"
#include "transform/sniff.h"

using namespace thimble;
using namespace thimble::transform;
using namespace thimble::test::rendering;

namespace {

// The corpus storm photograph (1920x1280) at a smaller size, as a PNG in `dir`.
std::filesystem::path storm_png(const test::TempDir& dir, int width) {
  cv::Mat storm = cv::imread(test::corpus("medium/mate_Storm.jpg").string());
  cv::Mat small;
  cv::resize(storm, small, cv::Size(width, width * storm.rows / storm.cols), 0, 0, cv::INTER_AREA);
  return test::png_in(dir, "storm" + std::to_string(width), small);
}

// A thumbnail of `original` and of the reference, decoded, and their mean difference in levels.
double difference(const std::string& original, const std::string& reference,
                  const std::string& options) {
  const cv::Mat a = decoded(render_ok(original, options));
  const cv::Mat b = decoded(render_ok(reference, options));
  return mean_abs_diff(a, b);
}

// What libheif itself shows for `file`: rotations and mirrors applied, 8-bit BGR.
cv::Mat libheif_view(const std::string& file) {
  heif_context* context = heif_context_alloc();
  REQUIRE(
      heif_context_read_from_memory_without_copy(context, file.data(), file.size(), nullptr).code ==
      heif_error_Ok);
  heif_image_handle* handle = nullptr;
  REQUIRE(heif_context_get_primary_image_handle(context, &handle).code == heif_error_Ok);
  heif_image* image = nullptr;
  REQUIRE(
      heif_decode_image(handle, &image, heif_colorspace_RGB, heif_chroma_interleaved_RGB, nullptr)
          .code == heif_error_Ok);
  int stride = 0;
  const std::uint8_t* plane =
      heif_image_get_plane_readonly(image, heif_channel_interleaved, &stride);
  cv::Mat rgb(heif_image_get_height(image, heif_channel_interleaved),
              heif_image_get_width(image, heif_channel_interleaved), CV_8UC3,
              const_cast<std::uint8_t*>(plane), static_cast<std::size_t>(stride));
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  heif_image_release(image);
  heif_image_handle_release(handle);
  heif_context_free(context);
  return bgr;
}

// Every frame of an animated thumbnail, as Thimble's own reader composes it.
std::vector<cv::Mat> frames_of(const std::string& animation) {
  auto info = sniff(test::as_bytes(animation));
  REQUIRE(info.ok());
  auto reader = open_frames(test::as_bytes(animation), *info, {});
  REQUIRE(reader.ok());
  std::vector<cv::Mat> frames;
  cv::Mat canvas;
  int duration = 0;
  while (true) {
    auto more = (*reader)->next(canvas, duration);
    REQUIRE(more.ok());
    if (!*more) break;
    frames.push_back(canvas.clone());
  }
  return frames;
}

cv::Vec3b colour_at(const cv::Mat& image, int x, int y) {
  if (image.channels() == 4) {
    const cv::Vec4b p = image.at<cv::Vec4b>(y, x);
    return {p[0], p[1], p[2]};
  }
  return image.at<cv::Vec3b>(y, x);
}

bool near(cv::Vec3b a, cv::Vec3b b, int tolerance = 24) {
  for (int c = 0; c < 3; ++c) {
    if (std::abs(a[c] - b[c]) > tolerance) return false;
  }
  return true;
}

}  // namespace

TEST_CASE(
    "HEIC from a corpus photograph: sniffed, decoded upright, close to the JPEG's thumbnail") {
  test::TempDir dir;
  const auto jpeg = test::corpus("medium/mate_Storm.jpg");
  test::run("heif-enc -q 90 -t 320 " + jpeg.string() + " -o " + (dir.path() / "s.heic").string());
  const std::string heic = test::read_file(dir.path() / "s.heic");
  auto info = sniff(test::as_bytes(heic));
  REQUIRE(info.ok());
  CHECK(info->format == ImageFormat::kHeic);
  CHECK(info->width == 1920);
  CHECK(info->height == 1280);
  CHECK(info->orientation == 1);  // the HEIC keeps the JPEG's EXIF, which never applies
  CHECK(info->thumbnail_width == 320);

  const std::string reference = test::read_file(jpeg);
  const Thumbnail big = render_ok(heic, "fit-in/300x200");
  CHECK(big.format == ImageFormat::kJpeg);  // never HEIC to a browser
  CHECK(big.size == Size{300, 200});
  // The 320 px thumbnail is not twice the target: the image itself, its planes at half size.
  CHECK(big.shrink_on_load == 2);
  CHECK(difference(heic, reference, "fit-in/300x200") < 4.0);
  // Reduced on load, the planes give the pixels of libheif's full decode averaged by area.
  auto quarter = decode_image(test::as_bytes(heic), *info, 4);
  REQUIRE(quarter.ok());
  REQUIRE(quarter->size() == cv::Size(480, 320));
  cv::Mat expected;
  cv::resize(libheif_view(heic), expected, quarter->size(), 0, 0, cv::INTER_AREA);
  CHECK(mean_abs_diff(*quarter, expected) < 0.5);
  // A small target decodes the thumbnail item instead of the 1920 px image.
  const Thumbnail small = render_ok(heic, "fit-in/120x80");
  CHECK(small.shrink_on_load == 6);
  CHECK(small.size == Size{120, 80});
  CHECK(difference(heic, reference, "fit-in/120x80") < 4.0);
  CHECK(render_ok(heic, "fit-in/120x80/filters:format(webp)").format == ImageFormat::kWebp);
}

// The offset of the `ispe` box whose width is `width` (big-endian, as stored).
std::size_t ispe_of_width(const std::string& file, std::uint32_t width) {
  for (std::size_t at = file.find("ispe"); at != std::string::npos;
       at = file.find("ispe", at + 1)) {
    std::uint32_t stored = 0;
    for (int i = 0; i < 4; ++i) stored = stored << 8 | static_cast<std::uint8_t>(file[at + 8 + i]);
    if (stored == width) return at;
  }
  return std::string::npos;
}

TEST_CASE(
    "HEICs of any size: odd sides (one tile a pixel larger, cropped by a grid) and sides "
    "off HEVC's 8-pixel blocks") {
  test::TempDir dir;
  for (const int width : {251, 250}) {
    CAPTURE(width);
    const auto png = storm_png(dir, width);  // 251x167: both sides odd; 250x166: coded 256x168
    const auto out = dir.path() / ("s" + std::to_string(width) + ".heic");
    test::run("heif-enc -q 90 " + png.string() + " -o " + out.string());
    const std::string heic = test::read_file(out);
    auto info = sniff(test::as_bytes(heic));
    REQUIRE(info.ok());
    CHECK(info->width == width);
    if (width % 2 == 1) {  // heif-enc's one-tile grid: the tile is a pixel larger on each side
      CHECK(info->coded_width == width + 1);
      CHECK(info->coded_height == info->height + 1);
    } else {
      CHECK(info->coded_width == 0);
    }
    const std::string reference = test::read_file(png);
    const Thumbnail t = render_ok(heic, "fit-in/120x120/filters:format(png)");
    CHECK(t.size.width == 120);
    CHECK(difference(heic, reference, "fit-in/120x120/filters:format(png)") < 3.0);
    CHECK(render_ok(heic, "filters:format(png)").size == Size{width, info->height});
  }

  // The grid description must agree with the image and its tiles.
  const std::string heic = test::read_file(dir.path() / "s251.heic");
  const std::size_t idat = heic.find("idat");
  REQUIRE(idat != std::string::npos);
  // idat holds the description: version, flags, rows - 1, columns - 1, output width, height.
  REQUIRE(static_cast<std::uint8_t>(heic[idat + 8]) == 0);
  REQUIRE(static_cast<std::uint8_t>(heic[idat + 9]) == 251);
  auto refused = [](const std::string& file) {
    auto out = render_bytes(file, "fit-in/64x64");
    REQUIRE_FALSE(out.ok());
    CHECK(out.status().code() == Code::kUnsupportedMedia);
    return out.status().message();
  };
  std::string disagrees = heic;
  disagrees[idat + 9] = '\xc8';  // 200 wide, where the grid's ispe says 251
  CHECK(refused(disagrees) == "the HEIF grid's size disagrees with the image's");
  // A 100 px wide grid over a 252 px tile is within the rules (a tile larger than the image
  // is cropped), and the limits hold for the 252x168 that is decoded, not for the 100 px shown.
  const std::size_t grid_ispe = ispe_of_width(heic, 251);
  REQUIRE(grid_ispe != std::string::npos);
  std::string overhanging = heic;
  overhanging[idat + 9] = '\x64';
  overhanging[grid_ispe + 11] = '\x64';
  CHECK(render_ok(overhanging, "filters:format(png)").size == Size{100, 167});
  RenderSettings narrow;
  narrow.max_source_dimension = 200;
  auto over_limit = render_bytes(overhanging, "fit-in/64x64", narrow);
  REQUIRE_FALSE(over_limit.ok());
  CHECK(over_limit.status().code() == Code::kTooLarge);
  CHECK(over_limit.status().message() == "the source is 252x168, over the limit of 200 per side");
  // A grid wider than its tiles cover.
  std::string uncovered = heic;
  uncovered.replace(idat + 8, 2, std::string("\x01\x2c", 2));  // 300
  uncovered.replace(grid_ispe + 10, 2, std::string("\x01\x2c", 2));
  CHECK(refused(uncovered) == "the HEIF grid's tiles do not fit its size");
  std::string two_rows = heic;
  two_rows[idat + 6] = '\x01';  // rows - 1 = 1, with one tile
  CHECK(refused(two_rows) == "the HEIF grid does not have rows x columns tiles");
  std::string cut = heic;
  cut[idat - 1] = '\x0b';  // idat says it ends inside the description
  CHECK(render_bytes(cut, "fit-in/64x64").status().code() == Code::kUnsupportedMedia);
}

TEST_CASE("the EXIF orientation inside a HEIC never applies: irot and imir decide, as in libheif") {
  test::TempDir dir;
  // heif-enc 1.15 copies the JPEG's EXIF block (orientation 6) as it is, without turning the
  // pixels or writing an irot: by the HEIF rules the file shows as stored.
  const auto jpeg = test::corpus("exif/Landscape_6.jpg");
  test::run("heif-enc -q 90 " + jpeg.string() + " -o " + (dir.path() / "l.heic").string());
  const std::string heic = test::read_file(dir.path() / "l.heic");
  auto info = sniff(test::as_bytes(heic));
  REQUIRE(info.ok());
  CHECK(info->orientation == 1);
  CHECK(info->width == 1200);
  CHECK(info->height == 1800);
  const Thumbnail t = render_ok(heic, "fit-in/300x300");
  CHECK(t.size == Size{200, 300});
  RenderSettings as_stored;
  as_stored.respect_orientation = false;
  CHECK(mean_abs_diff(decoded(t), decoded(render_ok(test::read_file(jpeg), "fit-in/300x300",
                                                    as_stored))) < 4.0);
}

TEST_CASE("AVIF rotation and mirroring (irot, imir) are shown as libheif shows them") {
  test::TempDir dir;
  const auto png = storm_png(dir, 96);
  for (const std::string rotation : {"", "--irot 1", "--irot 2", "--irot 3"}) {
    for (const std::string mirror : {"", "--imir 0", "--imir 1"}) {
      CAPTURE(rotation);
      CAPTURE(mirror);
      const auto out = dir.path() / "o.avif";
      test::run("avifenc -s 10 -l " + rotation + " " + mirror + " " + png.string() + " " +
                out.string());
      const std::string avif = test::read_file(out);
      const cv::Mat expected = libheif_view(avif);
      const Thumbnail t = render_ok(avif, "filters:format(png)");
      const cv::Mat got = decoded(t);
      REQUIRE(got.size() == expected.size());
      CHECK(mean_abs_diff(got, expected) < 1.0);
    }
  }
}

TEST_CASE("AVIF: alpha kept, 10-bit reduced to 8, grids read whole, nclx Display P3 made sRGB") {
  test::TempDir dir;
  const auto png = storm_png(dir, 240);  // tiles of 120x80: even, as 4:2:0 needs
  const std::string reference = test::read_file(png);

  test::run("avifenc -s 10 -d 10 --min 4 --max 8 " + png.string() + " " +
            (dir.path() / "d10.avif").string());
  const std::string deep = test::read_file(dir.path() / "d10.avif");
  CHECK(difference(deep, reference, "fit-in/128x128/filters:format(png)") < 3.0);

  test::run("avifenc -s 10 --min 4 --max 8 --grid 2x2 " + png.string() + " " +
            (dir.path() / "g.avif").string());
  const std::string grid = test::read_file(dir.path() / "g.avif");
  auto grid_info = sniff(test::as_bytes(grid));
  REQUIRE(grid_info.ok());
  CHECK(grid_info->width == 240);
  CHECK(difference(grid, reference, "fit-in/128x128/filters:format(png)") < 3.0);

  // Alpha: a transparent corner survives into a PNG thumbnail.
  cv::Mat rgba = cv::imread(png.string());
  cv::cvtColor(rgba, rgba, cv::COLOR_BGR2BGRA);
  rgba(cv::Rect(0, 0, 64, 64)).setTo(cv::Scalar(0, 0, 0, 0));
  const auto alpha_png = test::png_in(dir, "alpha", rgba);
  test::run("avifenc -s 10 --min 4 --max 8 " + alpha_png.string() + " " +
            (dir.path() / "a.avif").string());
  const std::string with_alpha = test::read_file(dir.path() / "a.avif");
  const Thumbnail t = render_ok(with_alpha, "fit-in/128x128");
  CHECK(t.format == ImageFormat::kPng);  // the default for an AVIF with alpha
  const cv::Mat shown = decoded(t);
  REQUIRE(shown.channels() == 4);
  CHECK(shown.at<cv::Vec4b>(4, 4)[3] == 0);
  CHECK(shown.at<cv::Vec4b>(60, 100)[3] == 255);

  // Display P3 code points: the pixels are P3 values; the thumbnail must be sRGB again.
  const cv::Mat p3 = test::in_profile(cv::imread(png.string()), test::display_p3_profile());
  const auto p3_png = test::png_in(dir, "p3", p3);
  test::run("avifenc -s 10 --min 2 --max 4 -y 444 --cicp 12/13/1 " + p3_png.string() + " " +
            (dir.path() / "p3.avif").string());
  const std::string p3_avif = test::read_file(dir.path() / "p3.avif");
  const double managed = difference(p3_avif, reference, "fit-in/128x128/filters:format(png)");
  RenderSettings ignore;
  ignore.color_management = "ignore";
  const double unmanaged =
      mean_abs_diff(decoded(render_ok(p3_avif, "fit-in/128x128/filters:format(png)", ignore)),
                    decoded(render_ok(reference, "fit-in/128x128/filters:format(png)")));
  CHECK(managed < 2.5);
  CHECK(unmanaged > managed + 1.0);
}

TEST_CASE("HEIF headers that lie or loop are refused before libheif decodes anything") {
  test::TempDir dir;
  const auto png = storm_png(dir, 64);
  test::run("avifenc -s 10 " + png.string() + " " + (dir.path() / "s.avif").string());
  const std::string avif = test::read_file(dir.path() / "s.avif");
  // The primary item points at an item that does not exist.
  std::string missing = avif;
  const std::size_t pitm = missing.find("pitm");
  REQUIRE(pitm != std::string::npos);
  missing[pitm + 8] = '\x7f';
  missing[pitm + 9] = '\x7f';
  auto refused = render_bytes(missing, "fit-in/32x32");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Code::kUnsupportedMedia);
  // An ispe claiming 30000x30000: 413 from the header.
  std::string huge = avif;
  const std::size_t ispe = huge.find("ispe");
  REQUIRE(ispe != std::string::npos);
  const std::string side("\x00\x00\x75\x30", 4);
  huge.replace(ispe + 8, 4, side);
  huge.replace(ispe + 12, 4, side);
  auto too_large = render_bytes(huge, "fit-in/32x32");
  REQUIRE_FALSE(too_large.ok());
  CHECK(too_large.status().code() == Code::kTooLarge);
  // A primary item with no data (a fuzz finding: libheif handed dav1d an empty buffer and leaked
  // it): refused from the item locations.
  const std::string empty =
      test::read_file(std::filesystem::path(THIMBLE_SOURCE_DIR) /
                      "tests/fuzz/regressions/render/avif-primary-without-data")
          .substr(1);  // the fuzz target's first byte picks its URL
  auto no_data = render_bytes(empty, "fit-in/32x32");
  REQUIRE_FALSE(no_data.ok());
  CHECK(no_data.status().message() == "the HEIF primary image has no data");
  // An extent of length 0 ("to the end of the file", which libheif reads as no bytes; another
  // fuzz finding with the same leak): no data either.
  const std::string to_the_end =
      test::read_file(std::filesystem::path(THIMBLE_SOURCE_DIR) /
                      "tests/fuzz/regressions/render/avif-extent-of-length-zero")
          .substr(1);
  auto zero_length = render_bytes(to_the_end, "fit-in/32x32");
  REQUIRE_FALSE(zero_length.ok());
  CHECK(zero_length.status().message() == "the HEIF primary image has no data");
  // Every truncation is refused or rendered, never more.
  for (std::size_t cut : {std::size_t{12}, std::size_t{40}, avif.size() / 3, avif.size() - 10}) {
    auto out = render_bytes(avif.substr(0, cut), "fit-in/32x32");
    if (!out.ok()) CHECK(out.status().code() == Code::kUnsupportedMedia);
  }
}

TEST_CASE("a still GIF stays a GIF, with its transparency and colours") {
  cv::Mat picture =
      test::frame(60, 40, cv::Scalar(0, 0, 255), cv::Rect(20, 10, 20, 20), cv::Scalar(255, 0, 0));
  picture(cv::Rect(0, 0, 10, 10)).setTo(cv::Scalar(0, 255, 0));  // drawn transparent
  const std::string gif =
      test::write_gif(60, 40, {{picture, {0, 0}, 0, 0, cv::Vec3b(0, 255, 0)}}, std::nullopt);
  const Thumbnail t = render_ok(gif, "30x20");
  CHECK(t.format == ImageFormat::kGif);
  CHECK(t.bytes.substr(0, 6) == "GIF89a");
  CHECK(t.frames == 1);
  const std::vector<cv::Mat> frames = frames_of(t.bytes);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].size() == cv::Size(30, 20));
  CHECK(frames[0].at<cv::Vec4b>(1, 1)[3] == 0);  // transparent corner
  CHECK(near(colour_at(frames[0], 15, 10), {255, 0, 0}));
  CHECK(near(colour_at(frames[0], 25, 3), {0, 0, 255}));
  const Thumbnail jpeg = render_ok(gif, "30x20/filters:format(jpeg)");
  CHECK(jpeg.format == ImageFormat::kJpeg);
}

TEST_CASE("an animated GIF keeps every frame, its timing, loop count and disposal") {
  // 3 frames on an 80x60 canvas: a red background, then a blue square drawn over it (kept), then
  // the square restored to the background and a green one elsewhere.
  const cv::Mat red(60, 80, CV_8UC3, cv::Scalar(0, 0, 255));
  const cv::Mat blue(20, 20, CV_8UC3, cv::Scalar(255, 0, 0));
  const cv::Mat green(20, 20, CV_8UC3, cv::Scalar(0, 255, 0));
  const std::string gif = test::write_gif(80, 60,
                                          {{red, {0, 0}, 20, DISPOSE_DO_NOT, std::nullopt},
                                           {blue, {10, 10}, 30, DISPOSE_PREVIOUS, std::nullopt},
                                           {green, {50, 30}, 40, DISPOSE_DO_NOT, std::nullopt}},
                                          3);
  auto info = sniff(test::as_bytes(gif));
  REQUIRE(info.ok());
  CHECK(info->frames == 3);
  CHECK(info->loop_count == 3);

  test::TempDir dir;
  const Thumbnail t = render_ok(gif, "40x30");
  CHECK(t.format == ImageFormat::kGif);
  CHECK(t.frames == 3);
  test::write_file(dir.path() / "t.gif", t.bytes);
  const std::string report = test::output_of("gifsicle --info " + (dir.path() / "t.gif").string());
  CAPTURE(report);
  CHECK(report.find("3 images") != std::string::npos);
  CHECK(report.find("logical screen 40x30") != std::string::npos);
  CHECK(report.find("loop count 3") != std::string::npos);
  CHECK(report.find("delay 0.20s") != std::string::npos);
  CHECK(report.find("delay 0.30s") != std::string::npos);
  CHECK(report.find("delay 0.40s") != std::string::npos);
  const std::vector<cv::Mat> frames = frames_of(t.bytes);
  REQUIRE(frames.size() == 3);
  CHECK(near(colour_at(frames[1], 10, 10), {255, 0, 0}));  // the blue square, scaled
  CHECK(near(colour_at(frames[2], 10, 10), {0, 0, 255}));  // restored to what was before it
  CHECK(near(colour_at(frames[2], 30, 20), {0, 255, 0}));

  // format(webp): an animated WebP with the same frames and timing.
  const Thumbnail webp = render_ok(gif, "40x30/filters:format(webp)");
  CHECK(webp.frames == 3);
  test::write_file(dir.path() / "t.webp", webp.bytes);
  const std::string mux = test::output_of("webpmux -info " + (dir.path() / "t.webp").string());
  CAPTURE(mux);
  CHECK(mux.find("Number of frames: 3") != std::string::npos);
  CHECK(mux.find("Loop Count : 3") != std::string::npos);
  const std::vector<cv::Mat> webp_frames = frames_of(webp.bytes);
  REQUIRE(webp_frames.size() == 3);
  CHECK(near(colour_at(webp_frames[2], 30, 20), {0, 255, 0}));
  // format(png): the first frame, said as such by its size and format.
  const Thumbnail png = render_ok(gif, "40x30/filters:format(png)");
  CHECK(png.frames == 1);
  CHECK(png.format == ImageFormat::kPng);
  // Flips and filters apply to every frame.
  const std::vector<cv::Mat> flipped = frames_of(render_ok(gif, "-40x30").bytes);
  REQUIRE(flipped.size() == 3);
  CHECK(near(colour_at(flipped[2], 9, 20), {0, 255, 0}));
  const std::vector<cv::Mat> grey = frames_of(render_ok(gif, "40x30/filters:grayscale()").bytes);
  REQUIRE(grey.size() == 3);
  const cv::Vec3b g = colour_at(grey[2], 30, 20);
  CHECK(std::abs(g[0] - g[2]) < 6);
}

TEST_CASE("animated WebP in: frames, durations and loop count kept, to WebP and to GIF") {
  test::TempDir dir;
  std::vector<std::string> pngs;
  for (int i = 0; i < 4; ++i) {
    pngs.push_back(test::png_in(dir, "f" + std::to_string(i),
                                test::frame(120, 90, cv::Scalar(40 * i, 80, 200),
                                            cv::Rect(20 * i, 30, 30, 30), cv::Scalar(255, 255, 0)))
                       .string());
  }
  test::run("img2webp -loop 2 -lossless -d 100 " + pngs[0] + " -d 150 " + pngs[1] + " -d 200 " +
            pngs[2] + " -d 250 " + pngs[3] + " -o " + (dir.path() / "a.webp").string());
  const std::string webp = test::read_file(dir.path() / "a.webp");
  auto info = sniff(test::as_bytes(webp));
  REQUIRE(info.ok());
  CHECK(info->animated);
  CHECK(info->frames == 4);
  CHECK(info->loop_count == 2);

  const Thumbnail t = render_ok(webp, "60x45");
  CHECK(t.format == ImageFormat::kWebp);
  CHECK(t.frames == 4);
  test::write_file(dir.path() / "t.webp", t.bytes);
  const std::string mux = test::output_of("webpmux -info " + (dir.path() / "t.webp").string());
  CAPTURE(mux);
  CHECK(mux.find("Canvas size: 60 x 45") != std::string::npos);
  CHECK(mux.find("Number of frames: 4") != std::string::npos);
  CHECK(mux.find("Loop Count : 2") != std::string::npos);
  for (const char* duration : {"  100 ", "  150 ", "  200 ", "  250 "}) {
    CHECK(mux.find(duration) != std::string::npos);
  }
  const std::vector<cv::Mat> frames = frames_of(t.bytes);
  REQUIRE(frames.size() == 4);
  CHECK(near(colour_at(frames[3], 35, 22), {255, 255, 0}));  // the square moved right

  const Thumbnail gif = render_ok(webp, "60x45/filters:format(gif)");
  test::write_file(dir.path() / "t.gif", gif.bytes);
  const std::string report = test::output_of("gifsicle --info " + (dir.path() / "t.gif").string());
  CAPTURE(report);
  CHECK(report.find("4 images") != std::string::npos);
  CHECK(report.find("loop count 2") != std::string::npos);
  CHECK(report.find("delay 0.25s") != std::string::npos);

  auto spec = parse_spec("meta/60x45/image");
  REQUIRE(spec.ok());
  auto json = describe(test::as_bytes(webp), *spec, RenderSettings{});
  REQUIRE(json.ok());
  CHECK(json->find("\"frameCount\":4") != std::string::npos);
}

TEST_CASE("animation limits are checked from the header, before any frame is decoded") {
  std::vector<test::GifFrame> many;
  const cv::Mat dot(1, 1, CV_8UC3, cv::Scalar(0, 0, 0));
  for (int i = 0; i < 30; ++i) many.push_back({dot, {0, 0}, 1, DISPOSE_DO_NOT, std::nullopt});
  const std::string gif = test::write_gif(200, 200, many, 0);
  RenderSettings few;
  few.max_frames = 20;
  auto refused = render_bytes(gif, "10x10", few);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Code::kTooLarge);
  CHECK(refused.status().message() == "the animation has 30 frames, over the limit of 20");
  RenderSettings small;
  small.max_animation_pixels = 29 * 200 * 200;
  auto over = render_bytes(gif, "10x10", small);
  REQUIRE_FALSE(over.ok());
  CHECK(over.status().code() == Code::kTooLarge);
  CHECK(render_ok(gif, "10x10").frames == 30);
}

TEST_CASE("AVIF output: format(avif) decodes with avifdec at the asked size") {
  test::TempDir dir;
  const std::string storm = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  const Thumbnail t = render_ok(storm, "fit-in/300x200/filters:format(avif)");
  CHECK(t.format == ImageFormat::kAvif);
  CHECK(t.size == Size{300, 200});
  test::write_file(dir.path() / "t.avif", t.bytes);
  const std::string report = test::output_of("avifdec --info " + (dir.path() / "t.avif").string());
  CAPTURE(report);
  CHECK(report.find("Resolution     : 300x200") != std::string::npos);
  test::run("avifdec " + (dir.path() / "t.avif").string() + " " + (dir.path() / "t.png").string());
  const cv::Mat back = cv::imread((dir.path() / "t.png").string());
  const cv::Mat jpeg = decoded(render_ok(storm, "fit-in/300x200/filters:quality(95)"));
  CHECK(mean_abs_diff(back, jpeg) < 4.0);
  // quality() changes the bytes, as output.avif_quality does.
  const Thumbnail low = render_ok(storm, "fit-in/300x200/filters:format(avif):quality(20)");
  CHECK(low.bytes.size() < t.bytes.size());
  // With alpha.
  const std::string png = test::read_file(test::corpus("png/mate_Gulp_alpha.png"));
  const Thumbnail alpha = render_ok(png, "fit-in/200x200/filters:format(avif)");
  test::write_file(dir.path() / "a.avif", alpha.bytes);
  const std::string alpha_report =
      test::output_of("avifdec --info " + (dir.path() / "a.avif").string());
  CAPTURE(alpha_report);
  CHECK(alpha_report.find("Alpha          : Absent") == std::string::npos);
}

namespace {

// The sampling factors (h, v) of each component in a JPEG's frame header.
std::vector<std::pair<int, int>> jpeg_sampling(const std::string& jpeg) {
  for (std::size_t at = 2; at + 4 < jpeg.size();) {
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(jpeg[i]); };
    REQUIRE(byte(at) == 0xFF);
    const int marker = byte(at + 1);
    const std::size_t length = byte(at + 2) << 8 | byte(at + 3);
    if (marker == 0xC0 || marker == 0xC1 || marker == 0xC2) {
      std::vector<std::pair<int, int>> factors;
      for (int c = 0; c < byte(at + 9); ++c) {
        const int sampling = byte(at + 11 + 3 * static_cast<std::size_t>(c));
        factors.emplace_back(sampling >> 4, sampling & 15);
      }
      return factors;
    }
    at += 2 + length;
  }
  FAIL("no frame header");
  return {};
}

// The mean difference of two same-sized BGR images' Cb and Cr, in levels.
double chroma_difference(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat ya, yb;
  cv::cvtColor(a.channels() == 4 ? a(cv::Rect(0, 0, a.cols, a.rows)) : a, ya, cv::COLOR_BGR2YCrCb);
  cv::cvtColor(b, yb, cv::COLOR_BGR2YCrCb);
  cv::Mat difference;
  cv::absdiff(ya, yb, difference);
  const cv::Scalar mean = cv::mean(difference);
  return (mean[1] + mean[2]) / 2;
}

}  // namespace

TEST_CASE("chroma subsampling by content: full colour where 4:2:0 would smear colour edges") {
  test::TempDir dir;
  cv::Mat lettering(200, 300, CV_8UC3, cv::Scalar(200, 60, 20));
  cv::putText(lettering, "Thimble 42", {10, 80}, cv::FONT_HERSHEY_SIMPLEX, 1.2,
              cv::Scalar(0, 0, 230), 2, cv::LINE_AA);
  cv::putText(lettering, "small red text", {10, 140}, cv::FONT_HERSHEY_SIMPLEX, 0.5,
              cv::Scalar(20, 20, 255), 1, cv::LINE_AA);
  const std::string text = test::read_file(test::png_in(dir, "text", lettering));
  const std::string photo = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  RenderSettings subsampled, full;
  subsampled.chroma_subsampling = "420";
  full.chroma_subsampling = "444";
  const std::string jpeg = "filters:format(jpeg):quality(90)";

  // JPEG: 1x1 sampling for the lettering, 2x2 luma for a photograph, as configured otherwise.
  const Thumbnail text_auto = render_ok(text, jpeg);
  const Thumbnail text_420 = render_ok(text, jpeg, subsampled);
  CHECK(jpeg_sampling(text_auto.bytes) == std::vector<std::pair<int, int>>{{1, 1}, {1, 1}, {1, 1}});
  CHECK(jpeg_sampling(text_420.bytes) == std::vector<std::pair<int, int>>{{2, 2}, {1, 1}, {1, 1}});
  // The quality searches (quality(auto), max_bytes()) encode with the same choice.
  CHECK(jpeg_sampling(render_ok(text, "filters:format(jpeg):quality(auto)").bytes)[0] ==
        std::pair{1, 1});
  CHECK(jpeg_sampling(render_ok(text, "filters:format(jpeg):max_bytes(4000)").bytes)[0] ==
        std::pair{1, 1});
  const double kept = chroma_difference(decoded(text_auto), lettering);
  const double smeared = chroma_difference(decoded(text_420), lettering);
  CAPTURE(kept);
  CAPTURE(smeared);
  CHECK(kept * 2 < smeared);
  CHECK(jpeg_sampling(render_ok(photo, "fit-in/300x200").bytes)[0] == std::pair{2, 2});
  CHECK(jpeg_sampling(render_ok(photo, "fit-in/300x200", full).bytes)[0] == std::pair{1, 1});
  // Large outputs are not checked: 4:2:0 unless configured.
  CHECK(jpeg_sampling(render_ok(text, "1000x700/" + jpeg).bytes)[0] == std::pair{2, 2});

  // WebP stays 4:2:0 but converts sharply: the lettering's colour is closer.
  const std::string webp = "filters:format(webp):quality(90)";
  CHECK(chroma_difference(decoded(render_ok(text, webp)), lettering) <
        chroma_difference(decoded(render_ok(text, webp, subsampled)), lettering));

  // AVIF: 4:4:4 for the lettering, 4:2:0 for the photograph.
  auto avif_format = [&](const std::string& original, const std::string& name) {
    test::write_file(dir.path() / name,
                     render_ok(original, "fit-in/300x200/filters:format(avif)").bytes);
    return test::output_of("avifdec --info " + (dir.path() / name).string());
  };
  CHECK(avif_format(text, "t.avif").find("Format         : YUV444") != std::string::npos);
  CHECK(avif_format(photo, "p.avif").find("Format         : YUV420") != std::string::npos);
}

TEST_CASE(
    "Thimble's JPEG encoder: libjpeg-turbo's baseline stream, and its own progressive scans") {
  cv::Mat photo = cv::imread(test::corpus("medium/mate_Storm.jpg").string());
  cv::resize(photo, photo, {300, 200}, 0, 0, cv::INTER_AREA);
  auto ours = [&](bool progressive) {
    RenderSettings settings;
    settings.jpeg_progressive = progressive;
    cv::Mat copy = photo.clone();
    auto bytes = encode_image(copy, ImageFormat::kJpeg, ThumbnailSpec{}, settings);
    REQUIRE(bytes.ok());
    return *bytes;
  };
  auto opencv = [&](bool progressive) {
    std::vector<std::uint8_t> bytes;
    REQUIRE(cv::imencode(
        ".jpg", photo, bytes,
        {cv::IMWRITE_JPEG_QUALITY, 80, cv::IMWRITE_JPEG_PROGRESSIVE, progressive ? 1 : 0}));
    return std::string(bytes.begin(), bytes.end());
  };
  // Baseline: byte for byte what OpenCV (the encoder before) wrote.
  CHECK(ours(false) == opencv(false));
  // Progressive: six scans instead of libjpeg's ten, the same coefficients (successive
  // approximation only splits them across scans), so the same pixels, in no more bytes.
  const std::string progressive = ours(true), standard = opencv(true);
  CHECK(progressive.size() <= standard.size());
  const cv::Mat a = cv::imdecode(std::vector<std::uint8_t>(progressive.begin(), progressive.end()),
                                 cv::IMREAD_COLOR);
  const cv::Mat b =
      cv::imdecode(std::vector<std::uint8_t>(standard.begin(), standard.end()), cv::IMREAD_COLOR);
  REQUIRE(a.size() == b.size());
  CHECK(cv::norm(a, b, cv::NORM_INF) == 0);
  int scans = 0;
  for (std::size_t at = 0; (at = progressive.find("\xFF\xDA", at)) != std::string::npos; ++at) {
    ++scans;
  }
  CHECK(scans == 6);
}

TEST_CASE(
    "meta with smart/ finds a face in a large WebP and AVIF, decoded reduced, as in the JPEG") {
  // The corpus portrait four times larger (2132x3200): detection needs 600 px, so each of these
  // formats is decoded at a quarter (the JPEG by libjpeg, the WebP by libwebp's rescaler, the
  // AVIF's planes by area).
  cv::Mat portrait =
      cv::imread(test::corpus("faces/Giunchedi_Filippo_January_2015_01.jpg").string());
  cv::resize(portrait, portrait, {}, 4, 4, cv::INTER_CUBIC);
  const std::string jpeg = encode(portrait, ".jpg"), webp = encode(portrait, ".webp");
  const std::string avif = test::avif_of(portrait);
  auto face = [](const std::string& original) {
    auto spec = parse_spec("meta/300x300/smart/image");
    REQUIRE(spec.ok());
    auto json = describe(test::as_bytes(original), *spec, RenderSettings{});
    REQUIRE_MESSAGE(json.ok(), json.status().message());
    const std::size_t origin = json->find("\"origin\":\"Face Detection\"");
    REQUIRE_MESSAGE(origin != std::string::npos, *json);
    const std::size_t point = json->rfind("{\"x\":", origin);
    REQUIRE(point != std::string::npos);
    int x = 0, y = 0;
    REQUIRE(std::sscanf(json->c_str() + point, "{\"x\":%d,\"y\":%d", &x, &y) == 2);
    return cv::Point(x, y);
  };
  const cv::Point reference = face(jpeg);
  for (const std::string* other : {&webp, &avif}) {
    const cv::Point found = face(*other);
    CAPTURE(found);
    CAPTURE(reference);
    CHECK(cv::norm(found - reference) < 40);
  }
}

TEST_CASE("lossy WebP: libwebp's defaults but the strongest deblocking, closer in the same bytes") {
  for (const char* name : {"medium/mate_Storm.jpg", "exif/Landscape_1.jpg",
                           "faces/Giunchedi_Filippo_January_2015_01.jpg"}) {
    CAPTURE(name);
    cv::Mat photo = cv::imread(test::corpus(name).string());
    cv::resize(photo, photo, {300, 200}, 0, 0, cv::INTER_AREA);
    cv::Mat copy = photo.clone();
    ThumbnailSpec spec;
    spec.quality = 80;
    auto ours = encode_image(copy, ImageFormat::kWebp, spec, RenderSettings{});
    REQUIRE(ours.ok());
    // OpenCV writes WebP with libwebp's simple API: every setting at its default.
    std::vector<std::uint8_t> defaults;
    REQUIRE(cv::imencode(".webp", photo, defaults, {cv::IMWRITE_WEBP_QUALITY, 80}));
    // The filter's strength is signalled, not coded: the same size within a few header bytes.
    CHECK(std::abs(static_cast<double>(ours->size()) - static_cast<double>(defaults.size())) <=
          0.005 * static_cast<double>(defaults.size()));
    const double filtered = luma_ssim(
        cv::imdecode(std::vector<std::uint8_t>(ours->begin(), ours->end()), cv::IMREAD_COLOR),
        photo);
    const double standard = luma_ssim(cv::imdecode(defaults, cv::IMREAD_COLOR), photo);
    CAPTURE(filtered);
    CAPTURE(standard);
    CHECK(filtered > standard);
  }
}

TEST_CASE(
    "a WebP with alpha shrunk on load keeps the colour of transparent pixels out of the edge") {
  // Opaque blue on the left, fully transparent red on the right (kept as it is with cwebp's
  // -exact, which real encoders may also do), the edge off the shrink's block boundaries.
  cv::Mat image(480, 640, CV_8UC4, cv::Scalar(255, 0, 0, 255));
  image(cv::Rect(323, 0, 640 - 323, 480)).setTo(cv::Scalar(0, 0, 255, 0));
  test::TempDir dir;
  const std::filesystem::path png = test::png_in(dir, "edge", image);
  for (const std::string options : {"-q 90 -exact", "-lossless -exact"}) {
    CAPTURE(options);
    const std::filesystem::path webp = dir.path() / "edge.webp";
    test::run("cwebp " + options + " " + png.string() + " -o " + webp.string());
    const cv::Mat out =
        decoded(render_ok(test::read_file(webp), "fit-in/80x60/filters:format(png)"));
    REQUIRE(out.type() == CV_8UC4);
    int worst_red = 0, opaque = 0;
    for (int y = 0; y < out.rows; ++y) {
      for (int x = 0; x < out.cols; ++x) {
        const cv::Vec4b pixel = out.at<cv::Vec4b>(y, x);
        if (pixel[3] >= 16) worst_red = std::max(worst_red, static_cast<int>(pixel[2]));
        if (pixel[3] == 255) ++opaque;
      }
    }
    CHECK(opaque > 0);
    CHECK(worst_red <= 24);  // no red fringe where the edge is partly visible
  }
}
