// transform/pipeline: real photographs in, thumbnails out; properties measured on the pixels.
#include <doctest/doctest.h>
#include <lcms2.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "hostile_images.h"
#include "icc_profiles.h"
#include "image_writer.h"
#include "render_support.h"
#include "support.h"
#include "transform/decode.h"
#include "transform/jpeg_dc.h"
#include "transform/meta.h"
#include "transform/pipeline.h"
#include "transform/resize.h"

using namespace thimble;
using namespace thimble::transform;
using namespace thimble::test::rendering;

namespace {

using test::png_chunk;
using test::png_file;

// `height` rows of filter byte 0 followed by `left` then `right`, each repeated `half` times.
std::string png_rows(int height, int half, const std::string& left, const std::string& right) {
  std::string row(1, '\0');
  for (int i = 0; i < half; ++i) row += left;
  for (int i = 0; i < half; ++i) row += right;
  std::string rows;
  for (int y = 0; y < height; ++y) rows += row;
  return rows;
}

}  // namespace

TEST_CASE(
    "paletted, grey + alpha and 16-bit grey PNGs decode with their colours and transparency") {
  // Palette: index 0 opaque red, index 1 blue made fully transparent by tRNS.
  const std::string palette_chunks = png_chunk("PLTE", std::string("\xff\0\0\0\0\xff", 6)) +
                                     png_chunk("tRNS", std::string("\xff\0", 2));
  cv::Mat palette = decoded(
      render_ok(png_file(64, 32, 3, 8, png_rows(32, 32, std::string(1, '\0'), std::string(1, '\1')),
                         palette_chunks),
                "fit-in/32x32"));
  REQUIRE(palette.channels() == 4);
  CHECK(palette.at<cv::Vec4b>(8, 4) == cv::Vec4b(0, 0, 255, 255));
  CHECK(palette.at<cv::Vec4b>(8, 28)[3] == 0);

  cv::Mat grey_alpha = decoded(
      render_ok(png_file(64, 32, 4, 8,
                         png_rows(32, 32, std::string("\xc8\xff", 2), std::string("\x32\0", 2))),
                "fit-in/32x32"));
  REQUIRE(grey_alpha.channels() == 4);
  CHECK(grey_alpha.at<cv::Vec4b>(8, 4) == cv::Vec4b(200, 200, 200, 255));
  CHECK(grey_alpha.at<cv::Vec4b>(8, 28)[3] == 0);

  cv::Mat grey16 = decoded(
      render_ok(png_file(64, 32, 0, 16,
                         png_rows(32, 32, std::string("\x9c\x40", 2), std::string("\x9c\x40", 2))),
                "fit-in/32x32"));
  CHECK(grey16.depth() == CV_8U);
  CHECK(grey16.at<cv::Vec3b>(8, 8)[0] == 156);  // 40000 / 257
}

TEST_CASE("thumbnails of a large JPEG have Thumbor's dimensions and are shrunk on load") {
  const std::string bridge = test::read_file(test::corpus("large/Bridge_by_Sander_Klootwijk.jpg"));
  struct Row {
    const char* options;
    int width, height, shrink;
  };
  // Bridge is progressive 4:2:2: 1/8 scale (from its DC scans) as soon as it covers the target.
  const Row rows[] = {
      {"fit-in/300x200", 300, 169, 8},
      {"300x300", 300, 300, 8},
      // 2448 * 200 / 4352 = 112.5 rounds half to even, as in Thumbor (then a 1-pixel crop).
      {"fit-in/1280x1280", 1280, 720, 2},
      {"200x0", 200, 112, 8},
      {"full-fit-in/300x300", 533, 300, 8},
      {"fit-in/5000x5000", 4352, 2448, 1},
  };
  for (const auto& row : rows) {
    std::string options(row.options);
    CAPTURE(options);
    Thumbnail t = render_ok(bridge, row.options);
    CHECK(t.format == ImageFormat::kJpeg);
    CHECK(t.size == Size{row.width, row.height});
    CHECK(t.shrink_on_load == row.shrink);
    cv::Mat img = decoded(t);
    CHECK(img.cols == row.width);
    CHECK(img.rows == row.height);
  }
}

TEST_CASE("the eight EXIF orientations all come out upright in every resize mode") {
  const std::string upright = test::read_file(test::corpus("exif/Landscape_1.jpg"));
  for (const char* options :
       {"fit-in/300x300", "200x200", "150x300/left", "300x100/bottom", "full-fit-in/120x120",
        "10x20:900x700/200x0", "-200x100", "adaptive-fit-in/100x200", "0x150"}) {
    cv::Mat reference = decoded(render_ok(upright, options));
    for (int n = 2; n <= 8; ++n) {
      std::string label(options);
      CAPTURE(label);
      CAPTURE(n);
      const std::string bytes =
          test::read_file(test::corpus("exif/Landscape_" + std::to_string(n) + ".jpg"));
      cv::Mat img = decoded(render_ok(bytes, options));
      REQUIRE(img.size() == reference.size());
      CHECK(mean_abs_diff(img, reference) < 8.0);
    }
  }
}

TEST_CASE("EXIF orientation can be ignored by configuration") {
  const std::string rotated = test::read_file(test::corpus("exif/Landscape_6.jpg"));
  CHECK(render_ok(rotated, "fit-in/300x300").size == Size{300, 200});
  RenderSettings ignore;
  ignore.respect_orientation = false;
  CHECK(render_ok(rotated, "fit-in/300x300", ignore).size == Size{200, 300});
}

TEST_CASE("area_resize averages as cv::INTER_AREA does, within one level, at any ratio") {
  cv::RNG rng(7);
  const cv::Mat photo = cv::imread(test::corpus("exif/Landscape_1.jpg").string());
  REQUIRE_FALSE(photo.empty());
  cv::Mat noise(371, 523, CV_8UC4), deep(201, 333, CV_16UC4), grey(250, 402, CV_8UC1);
  rng.fill(noise, cv::RNG::UNIFORM, 0, 256);
  rng.fill(deep, cv::RNG::UNIFORM, 0, 65026);
  rng.fill(grey, cv::RNG::UNIFORM, 0, 256);
  const std::vector<std::pair<cv::Mat, std::vector<cv::Size>>> cases = {
      {photo,
       {{1280, 853},
        {1280, 1200},
        {1799, 1199},
        {300, 200},
        {601, 401},
        {57, 38},
        {20, 13},
        {1, 1},
        {1800, 7}}},
      {noise, {{300, 200}, {522, 370}, {100, 371}, {97, 13}}},
      {deep, {{128, 80}, {332, 200}, {7, 5}}},
      {grey, {{133, 83}, {401, 1}}},
  };
  for (const auto& [source, sizes] : cases) {
    for (const cv::Size size : sizes) {
      CAPTURE(source.channels());
      CAPTURE(size);
      cv::Mat ours, theirs, difference;
      area_resize(source, ours, size);
      cv::resize(source, theirs, size, 0, 0, cv::INTER_AREA);
      REQUIRE(ours.size() == size);
      REQUIRE(ours.type() == source.type());
      cv::absdiff(ours, theirs, difference);
      if (source.depth() == CV_16U) difference.convertTo(difference, CV_32F, 1.0 / 257);  // levels
      double worst = 0;
      cv::minMaxLoc(difference.reshape(1), nullptr, &worst);
      CHECK(worst <= 1);
      CHECK(cv::mean(difference.reshape(1))[0] < 0.05);
    }
  }
}

TEST_CASE(
    "resize_image premultiplies translucent pixels as it shrinks, as a premultiplied copy "
    "averaged by OpenCV would") {
  cv::RNG rng(11);
  cv::Mat bgra(301, 457, CV_8UC4);
  rng.fill(bgra, cv::RNG::UNIFORM, 0, 256);
  for (const cv::Size size :
       {cv::Size(300, 200), cv::Size(100, 67), cv::Size(456, 300), cv::Size(9, 5)}) {
    CAPTURE(size);
    cv::Mat ours;
    resize_image(bgra, ours, size);
    cv::Mat premultiplied(bgra.size(), CV_16UC4), averaged;
    for (int y = 0; y < bgra.rows; ++y) {
      for (int x = 0; x < bgra.cols; ++x) {
        const cv::Vec4b p = bgra.at<cv::Vec4b>(y, x);
        premultiplied.at<cv::Vec4w>(y, x) = {
            static_cast<std::uint16_t>(p[0] * p[3]), static_cast<std::uint16_t>(p[1] * p[3]),
            static_cast<std::uint16_t>(p[2] * p[3]), static_cast<std::uint16_t>(p[3] * 255)};
      }
    }
    cv::resize(premultiplied, averaged, size, 0, 0, cv::INTER_AREA);
    int worst = 0;
    for (int y = 0; y < size.height; ++y) {
      for (int x = 0; x < size.width; ++x) {
        const cv::Vec4w a = averaged.at<cv::Vec4w>(y, x);
        const cv::Vec4b o = ours.at<cv::Vec4b>(y, x);
        worst = std::max(worst, std::abs(o[3] - static_cast<int>((a[3] + 127) / 255)));
        for (int c = 0; c < 3 && a[3] > 0; ++c) {
          const int expected = std::min(255, static_cast<int>((a[c] * 255 + a[3] / 2) / a[3]));
          worst = std::max(worst, std::abs(o[c] - expected));
        }
      }
    }
    CHECK(worst <= 1);
  }
}

TEST_CASE("alpha survives PNG to PNG and PNG to WebP, resized without dark fringes") {
  // Left half opaque red, right half fully transparent black.
  cv::Mat source(100, 200, CV_8UC4, cv::Scalar(0, 0, 0, 0));
  source(cv::Rect(0, 0, 101, 100)).setTo(cv::Scalar(0, 0, 255, 255));
  const std::string png = encode(source, ".png");
  for (const char* options : {"fit-in/67x67", "fit-in/67x67/filters:format(webp):quality(100)",
                              "fit-in/67x67/filters:format(webp)"}) {
    std::string label(options);
    CAPTURE(label);
    Thumbnail t = render_ok(png, options);
    cv::Mat out = decoded(t);
    REQUIRE(out.channels() == 4);
    double lowest = 0, highest = 0;
    std::vector<cv::Mat> planes;
    cv::split(out, planes);
    cv::minMaxLoc(planes[3], &lowest, &highest);
    CHECK(lowest == 0);
    CHECK(highest == 255);
    // Every pixel that is at least half visible keeps the red of the opaque side, in lossy WebP
    // too, whose 4:2:0 chroma blends edge pixels with their transparent neighbours (the darkest
    // was 211 before those took the edge's colour; a resize without premultiplication gives
    // ~128).
    const int floor = 240;
    int visible = 0;
    for (int y = 0; y < out.rows; ++y) {
      for (int x = 0; x < out.cols; ++x) {
        cv::Vec4b p = out.at<cv::Vec4b>(y, x);
        if (p[3] < 128) continue;
        ++visible;
        if (p[2] < floor) FAIL_CHECK("dark fringe at " << x << "," << y << ": " << p);
      }
    }
    CHECK(visible > 0);
  }
  // The real corpus PNG keeps its transparency too.
  Thumbnail gulp =
      render_ok(test::read_file(test::corpus("png/mate_Gulp_alpha.png")), "fit-in/300x300");
  CHECK(gulp.format == ImageFormat::kPng);
  CHECK(decoded(gulp).channels() == 4);
  Thumbnail gulp_webp =
      render_ok(test::read_file(test::corpus("webp/mate_Gulp_alpha.q80.webp")), "fit-in/300x300");
  CHECK(gulp_webp.format == ImageFormat::kWebp);
  CHECK(decoded(gulp_webp).channels() == 4);
}

TEST_CASE("transparent sources encoded to JPEG are flattened onto white") {
  cv::Mat source(100, 200, CV_8UC4, cv::Scalar(0, 0, 0, 0));
  source(cv::Rect(0, 0, 100, 100)).setTo(cv::Scalar(255, 0, 0, 255));
  Thumbnail t = render_ok(encode(source, ".png"), "filters:format(jpeg)");
  cv::Mat out = decoded(t);
  REQUIRE(out.channels() == 3);
  cv::Vec3b transparent_side = out.at<cv::Vec3b>(50, 150);
  cv::Vec3b opaque_side = out.at<cv::Vec3b>(50, 50);
  CHECK(transparent_side[0] > 245);
  CHECK(transparent_side[1] > 245);
  CHECK(transparent_side[2] > 245);
  CHECK(opaque_side[0] > 240);
  CHECK(opaque_side[2] < 15);
}

TEST_CASE("output formats follow format() and otherwise the source format") {
  const std::string storm = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  Thumbnail webp = render_ok(storm, "fit-in/200x200/filters:format(webp)");
  CHECK(webp.format == ImageFormat::kWebp);
  CHECK(webp.bytes.substr(0, 4) == "RIFF");
  Thumbnail png = render_ok(storm, "fit-in/200x200/filters:format(png)");
  CHECK(png.bytes.substr(1, 3) == "PNG");
  Thumbnail jpeg =
      render_ok(test::read_file(test::corpus("webp/sunset_by_Aitzol_Berasategi.q80.webp")),
                "fit-in/200x200/filters:format(jpeg)");
  CHECK(static_cast<unsigned char>(jpeg.bytes[0]) == 0xFF);
  CHECK(render_ok(test::read_file(test::corpus("webp/sunset_by_Aitzol_Berasategi.q80.webp")),
                  "fit-in/200x200")
            .format == ImageFormat::kWebp);
  const auto source = [](ImageFormat format, bool alpha = false, bool animated = false) {
    ImageInfo info;
    info.format = format;
    info.has_alpha = alpha;
    info.animated = animated;
    return info;
  };
  CHECK(output_format(ThumbnailSpec{}, source(ImageFormat::kGif), std::nullopt) ==
        ImageFormat::kGif);
  CHECK(output_format(ThumbnailSpec{}, source(ImageFormat::kHeic), std::nullopt) ==
        ImageFormat::kJpeg);
  CHECK(output_format(ThumbnailSpec{}, source(ImageFormat::kHeic, true), std::nullopt) ==
        ImageFormat::kPng);
  CHECK(output_format(ThumbnailSpec{}, source(ImageFormat::kAvif), std::nullopt) ==
        ImageFormat::kJpeg);
  CHECK(output_format(ThumbnailSpec{}, source(ImageFormat::kJpeg), ImageFormat::kWebp) ==
        ImageFormat::kWebp);
  // AVIF negotiated for an animation: animated WebP, never a still first frame.
  CHECK(output_format(ThumbnailSpec{}, source(ImageFormat::kGif, false, true),
                      ImageFormat::kAvif) == ImageFormat::kWebp);
}

TEST_CASE("quality() changes the encoded size, and progressive JPEG is the default") {
  const std::string storm = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  Thumbnail low = render_ok(storm, "fit-in/400x400/filters:quality(20)");
  Thumbnail high = render_ok(storm, "fit-in/400x400/filters:quality(95)");
  CHECK(low.bytes.size() * 2 < high.bytes.size());
  auto info = sniff(test::as_bytes(high.bytes));
  REQUIRE(info.ok());
  CHECK(info->progressive);
  RenderSettings baseline;
  baseline.jpeg_progressive = false;
  CHECK_FALSE(
      sniff(test::as_bytes(render_ok(storm, "fit-in/400x400", baseline).bytes))->progressive);
}

TEST_CASE("flips mirror the output") {
  cv::Mat source(40, 80, CV_8UC3, cv::Scalar(255, 0, 0));
  source(cv::Rect(0, 0, 40, 40)).setTo(cv::Scalar(0, 0, 255));  // red left, blue right
  cv::Mat flipped = decoded(render_ok(encode(source, ".png"), "-0x0"));
  CHECK(flipped.at<cv::Vec3b>(20, 5)[0] == 255);   // blue now on the left
  CHECK(flipped.at<cv::Vec3b>(20, 75)[2] == 255);  // red on the right
  cv::Mat both = decoded(render_ok(encode(source, ".png"), "-40x-20"));
  CHECK(both.cols == 40);
  CHECK(both.at<cv::Vec3b>(10, 2)[0] > 200);
}

TEST_CASE("grayscale and 16-bit sources come out as ordinary 8-bit colour") {
  cv::Mat gray(60, 90, CV_8UC1, cv::Scalar(100));
  Thumbnail g = render_ok(encode(gray, ".jpg"), "fit-in/45x45");
  CHECK(g.size == Size{45, 30});
  CHECK(std::abs(cv::mean(decoded(g))[0] - 100) < 3);
  cv::Mat deep(60, 90, CV_16UC3, cv::Scalar(65535, 32896, 0));
  cv::Mat out = decoded(render_ok(encode(deep, ".png"), "fit-in/45x45"));
  CHECK(out.depth() == CV_8U);
  cv::Scalar m = cv::mean(out);
  CHECK(m[0] == doctest::Approx(255).epsilon(0.01));
  CHECK(m[1] == doctest::Approx(128).epsilon(0.02));
}

TEST_CASE("over-limit sources are refused from the header, before decoding") {
  const std::string bridge = test::read_file(test::corpus("large/Bridge_by_Sander_Klootwijk.jpg"));
  RenderSettings small;
  small.max_source_pixels = 10'000'000;
  auto too_many = render_bytes(bridge, "fit-in/300x200", small);
  REQUIRE_FALSE(too_many.ok());
  CHECK(too_many.status().code() == Code::kTooLarge);
  RenderSettings narrow;
  narrow.max_source_dimension = 4000;
  auto too_wide = render_bytes(bridge, "fit-in/300x200", narrow);
  REQUIRE_FALSE(too_wide.ok());
  CHECK(too_wide.status().message() == "the source is 4352x2448, over the limit of 4000 per side");

  // 30000x30000 claimed by a file of a few bytes: refused without allocating pixels.
  std::string bomb = std::string(
      "\xFF\xD8\xFF\xC0\x00\x11\x08\x75\x30\x75\x30\x03\x01\x22\x00\x02"
      "\x11\x01\x03\x11\x01\xFF\xDA\x00\x08\x01\x01\x00\x00\x3f\x00\xFF\xD9",
      33);
  auto refused = render_bytes(bomb, "fit-in/300x200");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Code::kTooLarge);
}

TEST_CASE("a header read before is trusted instead of read again, and still held to the limits") {
  const std::string storm = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  auto spec = parse_spec("fit-in/300x200/image");
  REQUIRE(spec.ok());
  Result<ImageInfo> header = sniff(test::as_bytes(storm));
  REQUIRE(header.ok());
  RenderRequest known;
  known.header = *header;
  // The same thumbnail as reading the header itself.
  auto read = render(test::as_bytes(storm), *spec, RenderSettings{});
  auto trusted = render(test::as_bytes(storm), *spec, RenderSettings{}, known);
  REQUIRE(read.ok());
  REQUIRE(trusted.ok());
  CHECK(trusted->bytes == read->bytes);
  // What the known header says is what counts: a header claiming 40000 pixels a side is refused
  // before any decode, although the bytes are a small photo.
  known.header->width = 40000;
  auto refused = render(test::as_bytes(storm), *spec, RenderSettings{}, known);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Code::kTooLarge);
  auto described = describe(test::as_bytes(storm), *parse_spec("meta/fit-in/300x200/image"),
                            RenderSettings{}, known);
  REQUIRE_FALSE(described.ok());
  CHECK(described.status().code() == Code::kTooLarge);
}

TEST_CASE("a WebP that libwebp refuses is 415, never handed to another of OpenCV's decoders") {
  // Found by fuzz_render: RIFF/WEBP that sniff() reads but libwebp's own check refuses, with
  // "DICM" at byte 128, which made cv::imdecode hand it to GDCM (a multi-gigabyte allocation).
  const std::string finding = test::read_file(std::filesystem::path(THIMBLE_SOURCE_DIR) /
                                              "tests/fuzz/regressions/render/"
                                              "webp-refused-by-libwebp-read-as-dicom");
  const std::string original = finding.substr(1);  // the first byte picks the fuzz target's URL
  REQUIRE(original.substr(128, 4) == "DICM");
  Result<ImageInfo> info = sniff(test::as_bytes(original));
  REQUIRE(info.ok());
  CHECK(info->format == ImageFormat::kWebp);
  auto refused = render_bytes(original, "fit-in/100x100");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Code::kUnsupportedMedia);
  // The same with GDAL's "DTED" at byte 140.
  std::string dted = original;
  dted.replace(140, 4, "DTED");
  auto also_refused = render_bytes(dted, "fit-in/100x100");
  REQUIRE_FALSE(also_refused.ok());
  CHECK(also_refused.status().code() == Code::kUnsupportedMedia);
}

TEST_CASE("undecodable inputs are unsupported media, never a crash") {
  const std::string storm = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  const std::string png = test::read_file(test::corpus("png/mate_Gulp_alpha.png"));
  auto gif = render_bytes(std::string("GIF89a\x10\x00\x10\x00\x00\x00\x00", 13), "fit-in/10x10");
  REQUIRE_FALSE(gif.ok());
  CHECK(gif.status().message() == "truncated GIF: no whole frame");
  auto text = render_bytes("not an image at all", "fit-in/10x10");
  REQUIRE_FALSE(text.ok());
  CHECK(text.status().code() == Code::kUnsupportedMedia);
  // Truncated files: either a (partly grey) thumbnail or a 415, never anything else.
  for (const std::string& cut : {storm.substr(0, storm.size() / 2), storm.substr(0, 700),
                                 png.substr(0, png.size() / 3), png.substr(0, 100)}) {
    auto out = render_bytes(cut, "fit-in/100x100");
    CHECK((out.ok() || out.status().code() == Code::kUnsupportedMedia));
  }
}

TEST_CASE("pixel filters run after the resize, on the thumbnail") {
  const std::string storm = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  Thumbnail grey = render_ok(storm, "fit-in/120x120/filters:grayscale():format(png)");
  cv::Mat out = decoded(grey);
  CHECK(out.size() == cv::Size(120, 80));
  std::vector<cv::Mat> planes;
  cv::split(out, planes);
  CHECK(cv::norm(planes[0], planes[1]) == 0);
  CHECK(cv::norm(planes[1], planes[2]) == 0);
  Thumbnail turned = render_ok(storm, "fit-in/120x120/filters:rotate(90)");
  CHECK(turned.size == Size{80, 120});
  Thumbnail halved = render_ok(storm, "fit-in/120x120/filters:proportion(0.5)");
  CHECK(halved.size == Size{60, 40});
}

TEST_CASE("fit-in with fill gives exactly the box, and JPEG flattens onto the fill colour") {
  const std::string storm = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  Thumbnail boxed = render_ok(storm, "fit-in/300x300/filters:fill(black)");
  CHECK(boxed.size == Size{300, 300});
  cv::Mat out = decoded(boxed);
  CHECK(cv::mean(out(cv::Rect(0, 0, 300, 40)))[0] < 3);  // black band above the 300x200 photo
  // A transparent PNG encoded to JPEG: its transparent half becomes the background colour.
  cv::Mat source(100, 200, CV_8UC4, cv::Scalar(0, 0, 0, 0));
  source(cv::Rect(0, 0, 100, 100)).setTo(cv::Scalar(255, 0, 0, 255));
  cv::Mat flat = decoded(render_ok(encode(source, ".png"), "filters:format(jpeg):fill(red)"));
  cv::Vec3b right = flat.at<cv::Vec3b>(50, 150);
  CHECK(right[2] > 240);
  CHECK(right[0] < 15);
  // Padding is bounded by the output limit like any other output size.
  RenderSettings small;
  small.max_output_dimension = 1000;
  auto too_big = render_bytes(storm, "fit-in/5000x5000/filters:fill(white)", small);
  REQUIRE_FALSE(too_big.ok());
  CHECK(too_big.status().message().find("fill() would pad to 5000x5000") != std::string::npos);
}

TEST_CASE("trim removes a uniform border before the resize, within the tolerance") {
  // A 60x40 red rectangle at (25,15) on a 120x80 near-white canvas (values 248..255).
  cv::Mat canvas(80, 120, CV_8UC3);
  for (int y = 0; y < 80; ++y) {
    for (int x = 0; x < 120; ++x)
      canvas.at<cv::Vec3b>(y, x) = cv::Vec3b::all(static_cast<uchar>(248 + (x * 7 + y) % 8));
  }
  canvas.at<cv::Vec3b>(0, 0) = cv::Vec3b(255, 255, 255);
  canvas(cv::Rect(25, 15, 60, 40)).setTo(cv::Scalar(0, 0, 255));
  const std::string png = encode(canvas, ".png");
  CHECK(render_ok(png, "trim:20").size == Size{60, 40});
  // Without enough tolerance the noisy border counts as content.
  CHECK(render_ok(png, "trim").size == Size{120, 80});
  // Bottom-right corner reference, then the usual resize of what is left.
  Thumbnail resized = render_ok(png, "trim:bottom-right:20/30x20");
  CHECK(resized.size == Size{30, 20});
  cv::Mat out = decoded(resized);
  CHECK(out.at<cv::Vec3b>(10, 15)[2] > 240);  // all red: nothing of the border is left
  CHECK(out.at<cv::Vec3b>(1, 1)[2] > 240);
  // A manual crop is taken inside the trimmed image (its coordinates shifted by the trim).
  CHECK(render_ok(png, "trim:20/30x20:55x40").size == Size{25, 20});
  // A uniform image would be trimmed to nothing: the trim is ignored, as Thumbor does.
  const std::string flat = encode(cv::Mat(20, 30, CV_8UC3, cv::Scalar::all(9)), ".png");
  CHECK(render_ok(flat, "trim").size == Size{30, 20});
}

TEST_CASE("max_bytes re-encodes JPEG and WebP at lower quality until they fit") {
  const std::string storm = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  const std::size_t full = render_ok(storm, "fit-in/800x800").bytes.size();
  for (const char* format : {"jpeg", "webp"}) {
    std::string label(format);
    CAPTURE(label);
    const std::size_t unconstrained =
        render_ok(storm, "fit-in/800x800/filters:format(" + label + ")").bytes.size();
    const std::size_t limit = unconstrained / 2;
    Thumbnail fitted = render_ok(storm, "fit-in/800x800/filters:format(" + label + "):max_bytes(" +
                                            std::to_string(limit) + ")");
    CHECK(fitted.bytes.size() <= limit);
    CHECK(fitted.bytes.size() > limit / 4);  // raised back up towards the limit
    CHECK(decoded(fitted).cols == 800);
  }
  // Out of reach: Thumbor keeps the first encode rather than failing.
  CHECK(render_ok(storm, "fit-in/800x800/filters:max_bytes(50)").bytes.size() == full);
  // PNG is lossless: untouched.
  const std::size_t png = render_ok(storm, "fit-in/100x100/filters:format(png)").bytes.size();
  CHECK(render_ok(storm, "fit-in/100x100/filters:format(png):max_bytes(100)").bytes.size() == png);
}

TEST_CASE("watermark places another image by pixels, edges, centre, percent, repeat and ratio") {
  const std::string base = encode(cv::Mat(100, 200, CV_8UC3, cv::Scalar::all(128)), ".png");
  const std::string mark = encode(cv::Mat(10, 20, CV_8UC3, cv::Scalar(0, 0, 255)), ".png");
  const WatermarkSources marks{{"logo.png", mark}};
  auto render_marked = [&](const std::string& filter) {
    auto spec = parse_spec("filters:" + filter + ":format(png)/image");
    REQUIRE_MESSAGE(spec.ok(), spec.status().message());
    RenderRequest request;
    request.watermarks = marks;
    auto out = render(test::as_bytes(base), *spec, RenderSettings{}, request);
    REQUIRE_MESSAGE(out.ok(), out.status().message());
    return decoded(*out);
  };
  auto is_red = [](const cv::Mat& m, int y, int x) {
    cv::Vec3b p = m.at<cv::Vec3b>(y, x);
    return p[2] > 240 && p[0] < 15;
  };
  cv::Mat placed = render_marked("watermark(logo.png,10,20,0)");
  CHECK(is_red(placed, 25, 15));
  CHECK_FALSE(is_red(placed, 5, 5));
  cv::Mat from_edges = render_marked("watermark(logo.png,-10,-5,0)");  // x 170, y 85
  CHECK(is_red(from_edges, 90, 180));
  CHECK_FALSE(is_red(from_edges, 90, 195));
  CHECK(is_red(render_marked("watermark(logo.png,center,center,0)"), 50, 100));
  CHECK(is_red(render_marked("watermark(logo.png,50p,10p,0)"), 15, 105));  // x 100, y 10
  cv::Mat faint = render_marked("watermark(logo.png,0,0,50)");
  CHECK(std::abs(faint.at<cv::Vec3b>(5, 5)[2] - (255 + 128) / 2) <= 2);
  CHECK(std::abs(faint.at<cv::Vec3b>(5, 5)[0] - 128 / 2) <= 2);
  cv::Mat tiled = render_marked("watermark(logo.png,repeat,0,0)");
  CHECK(is_red(tiled, 5, 5));
  CHECK(is_red(tiled, 5, 195));
  CHECK_FALSE(is_red(tiled, 50, 100));
  cv::Mat scaled = render_marked("watermark(logo.png,0,0,0,50)");  // 50% of 200 wide: 100x50
  CHECK(is_red(scaled, 45, 95));
  CHECK_FALSE(is_red(scaled, 55, 105));

  auto spec = parse_spec("filters:watermark(other.png,0,0,0)/image");
  REQUIRE(spec.ok());
  RenderRequest request;
  request.watermarks = marks;
  auto missing = render(test::as_bytes(base), *spec, RenderSettings{}, request);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == Code::kBadRequest);
  auto junk_spec = parse_spec("filters:watermark(junk.png,0,0,0)/image");
  request.watermarks = {{"junk.png", "not an image"}};
  auto junk = render(test::as_bytes(base), *junk_spec, RenderSettings{}, request);
  REQUIRE_FALSE(junk.ok());
  CHECK(junk.status().message().find("watermark image 'junk.png'") != std::string::npos);
}

TEST_CASE("watermark arguments follow Thumbor's syntax, strictly") {
  auto spec = parse_spec("filters:watermark('marks/a,b.png', -10p, repeat, 30, none, 25)/image");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  CHECK(spec->canonical() == "filters:watermark('marks/a,b.png',-10p,repeat,30,none,25)");
  CHECK(parse_spec("filters:watermark(logo.png,10,-0,0)/image")->canonical() ==
        "filters:watermark(logo.png,10,-0,0,none,none)");
  for (const char* bad : {"watermark(logo.png,10,10)", "watermark(logo.png,10,10,101)",
                          "watermark(logo.png,left,10,0)", "watermark(logo.png,10,10,0,0)",
                          "watermark(,10,10,0)", "watermark(logo.png,10,10,0,50,50,50)"}) {
    std::string filter(bad);
    CAPTURE(filter);
    CHECK_FALSE(parse_spec("filters:" + filter + "/image").ok());
  }
  std::string many;
  for (int i = 0; i < 17; ++i) many += (i ? ":" : "") + std::string("watermark(logo.png,0,0,0)");
  auto too_many = parse_spec("filters:" + many + "/image");
  REQUIRE_FALSE(too_many.ok());
  CHECK(too_many.status().message().find("at most 16") != std::string::npos);
}

namespace {
// A CMYK JPEG as Photoshop writes them: Adobe marker, values stored inverted (255 = no ink).
std::string cmyk_jpeg(int width, int height, std::array<std::uint8_t, 4> stored) {
  return test::write_jpeg(
      cv::Mat(height, width, CV_8UC4, cv::Scalar(stored[0], stored[1], stored[2], stored[3])), 95);
}
}  // namespace

TEST_CASE("CMYK JPEGs come out in the right colours") {
  struct Row {
    std::array<std::uint8_t, 4> stored;  // inverted C, M, Y, K
    cv::Vec3b bgr;
  };
  const Row rows[] = {
      {{255, 0, 0, 255}, {0, 0, 255}},          // magenta + yellow = red
      {{0, 255, 255, 255}, {255, 255, 0}},      // cyan
      {{255, 255, 255, 255}, {255, 255, 255}},  // no ink: white
      {{255, 255, 255, 0}, {0, 0, 0}},          // full black
  };
  for (const auto& row : rows) {
    CAPTURE(int(row.stored[0]));
    CAPTURE(int(row.stored[3]));
    const std::string jpeg = cmyk_jpeg(64, 48, row.stored);
    auto info = sniff(test::as_bytes(jpeg));
    REQUIRE(info.ok());
    CHECK(info->width == 64);
    Thumbnail t = render_ok(jpeg, "fit-in/32x32/filters:format(png)");
    cv::Mat out = decoded(t);
    REQUIRE(out.channels() == 3);
    cv::Vec3b p = out.at<cv::Vec3b>(12, 16);
    for (int c = 0; c < 3; ++c) CHECK(std::abs(p[c] - row.bgr[c]) <= 6);
  }
}

TEST_CASE("lossless WebP and 8-bit grey PNG sources decode exactly") {
  cv::Mat pattern(40, 60, CV_8UC4);
  for (int y = 0; y < 40; ++y) {
    for (int x = 0; x < 60; ++x) {
      pattern.at<cv::Vec4b>(y, x) =
          cv::Vec4b(static_cast<uchar>(x * 4), static_cast<uchar>(y * 6),
                    static_cast<uchar>((x + y) * 2), static_cast<uchar>(255 - x));
    }
  }
  std::vector<std::uint8_t> lossless;
  REQUIRE(cv::imencode(".webp", pattern, lossless, {cv::IMWRITE_WEBP_QUALITY, 101}));
  auto info = sniff(std::span<const std::uint8_t>(lossless.data(), lossless.size()));
  REQUIRE(info.ok());
  CHECK(info->has_alpha);
  Thumbnail same = render_ok(std::string(lossless.begin(), lossless.end()), "filters:format(png)");
  cv::Mat out = decoded(same);
  REQUIRE(out.channels() == 4);
  CHECK(cv::norm(out, pattern, cv::NORM_INF) == 0);

  cv::Mat grey(30, 50, CV_8UC1, cv::Scalar(77));
  std::vector<std::uint8_t> png;
  REQUIRE(cv::imencode(".png", grey, png));
  Thumbnail g = render_ok(std::string(png.begin(), png.end()), "fit-in/25x25");
  CHECK(g.format == ImageFormat::kPng);
  cv::Mat gout = decoded(g);
  CHECK(gout.size() == cv::Size(25, 15));
  CHECK(std::abs(cv::mean(gout)[0] - 77) < 1);
}

TEST_CASE("a progressive JPEG at 1/8 scale is decoded from its DC scans, within a few levels") {
  struct Row {
    const char* name;
    bool dc_only;         // progressive
    bool chroma_from_dc;  // 4:2:0: chroma's 2x2 pixels per block from its DC alone
  };
  const Row rows[] = {
      {"large/Bridge_by_Sander_Klootwijk.jpg", true, false},     // progressive 4:2:2
      {"large/Dragonfly_by_Bolly.jpg", true, false},             // progressive 4:2:2
      {"large/sunset_by_Aitzol_Berasategi.jpg", true, false},    // progressive 4:2:2
      {"medium/Picture_1A_by_freespace.jpg", true, false},       // progressive 4:4:4
      {"large/seeding_by_Clements_Engelhardt.jpg", true, true},  // progressive 4:2:0
      {"large/Kleiber_by_Lukas_Baubkus.jpg", false, false},      // baseline
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    const std::string bytes = test::read_file(test::corpus(row.name));
    const auto data = test::as_bytes(bytes);
    Result<ImageInfo> info = sniff(data);
    REQUIRE(info.ok());
    CHECK(info->dc_eighth == row.dc_only);
    std::optional<cv::Mat> dc = decode_progressive_dc(data, info->width, info->height);
    REQUIRE(dc.has_value() == row.dc_only);
    const cv::Mat full = cv::imdecode(
        cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data())),
        cv::IMREAD_REDUCED_COLOR_8 | cv::IMREAD_IGNORE_ORIENTATION);
    // decode_image() takes the DC path when it can: the pixels of a full decode, but for the
    // lowest DC bits when the file sends them late (at most 2 levels of Y, Cb and Cr by
    // construction, so a few levels of B, G and R after the colour conversion).
    Result<cv::Mat> decoded = decode_image(data, *info, 8);
    REQUIRE(decoded.ok());
    REQUIRE(decoded->size() == full.size());
    const double error = cv::norm(*decoded, full, cv::NORM_INF);
    MESSAGE(std::string(row.name) << ": max difference " << error << ", PSNR "
                                  << cv::PSNR(*decoded, full));
    if (!row.dc_only) CHECK(error == 0);
    if (!row.chroma_from_dc) {
      CHECK(error <= 6);
      CHECK(cv::PSNR(*decoded, full) > 45);
      continue;
    }
    // 4:2:0: luma as above, chroma flat over each of its blocks (2x2 pixels at 1/8) where the
    // full decode shades it with the block's lowest AC terms. The thumbnail made from it (an area
    // resize, and 4:2:0 again once encoded) is within a fraction of a level.
    CHECK(cv::PSNR(*decoded, full) > 40);
    cv::Mat small_dc, small_full;
    const cv::Size thumb(full.cols * 300 / std::max(full.cols, full.rows),
                         full.rows * 300 / std::max(full.cols, full.rows));
    cv::resize(*decoded, small_dc, thumb, 0, 0, cv::INTER_AREA);
    cv::resize(full, small_full, thumb, 0, 0, cv::INTER_AREA);
    CHECK(cv::PSNR(small_dc, small_full) > 47);
  }
}

TEST_CASE("the DC-only decode reads only the first scans, and gives way on damaged files") {
  const std::string bytes = test::read_file(test::corpus("large/Bridge_by_Sander_Klootwijk.jpg"));
  Result<ImageInfo> info = sniff(test::as_bytes(bytes));
  REQUIRE(info.ok());
  // Cut where only the DC scans (a small part of the file) can be complete: still exact.
  const cv::Mat whole = *decode_progressive_dc(test::as_bytes(bytes), info->width, info->height);
  std::optional<std::size_t> enough;
  for (std::size_t cut = bytes.size() / 64; cut < bytes.size(); cut += bytes.size() / 64) {
    const std::string head = bytes.substr(0, cut);
    std::optional<cv::Mat> dc =
        decode_progressive_dc(test::as_bytes(head), info->width, info->height);
    if (dc) {
      CHECK(cv::norm(*dc, whole, cv::NORM_INF) == 0);
      enough = cut;
      break;
    }
  }
  REQUIRE(enough.has_value());
  MESSAGE("DC scans complete within the first " << *enough * 100 / bytes.size() << "% of the file");
  CHECK(*enough < bytes.size() / 2);
  // Too little data for the DC, a wrong size, garbage: nothing (the ordinary decode takes over).
  CHECK_FALSE(
      decode_progressive_dc(test::as_bytes(bytes.substr(0, 2000)), info->width, info->height));
  CHECK_FALSE(decode_progressive_dc(test::as_bytes(bytes), info->width + 64, info->height));
  CHECK_FALSE(decode_progressive_dc(test::as_bytes(std::string(5000, 'x')), 100, 100));
  // Through the pipeline, a 1/8 shrink of the truncated file still renders from its DC.
  Result<Thumbnail> thumb =
      render(test::as_bytes(bytes.substr(0, *enough)), *parse_spec("fit-in/150x150/x.jpg"), {});
  REQUIRE(thumb.ok());
  CHECK(thumb->shrink_on_load == 8);
}

TEST_CASE("the DC-only decode survives corrupted progressive files") {
  // Random byte damage where the frame header and DC scans live; under the sanitizers in CI. A
  // 4:4:4 file and a 4:2:0 one (whose chroma is decoded from DC with a 2x2 transform).
  for (const char* name :
       {"medium/Picture_1A_by_freespace.jpg", "large/seeding_by_Clements_Engelhardt.jpg"}) {
    CAPTURE(name);
    const std::string good = test::read_file(test::corpus(name));
    Result<ImageInfo> info = sniff(test::as_bytes(good));
    REQUIRE(info.ok());
    std::mt19937 random(20261121);
    int decoded = 0, refused = 0;
    for (int round = 0; round < 150; ++round) {
      std::string bad = good;
      const std::size_t span = good.size() / 5;
      for (int k = 0; k < 1 + round % 8; ++k) {
        bad[random() % span] = static_cast<char>(random() & 0xFF);
      }
      if (round % 3 == 0) bad.resize(random() % good.size());
      std::optional<cv::Mat> dc =
          decode_progressive_dc(test::as_bytes(bad), info->width, info->height);
      if (dc) {
        CHECK(dc->size() == cv::Size((info->width + 7) / 8, (info->height + 7) / 8));
        ++decoded;
      } else {
        ++refused;
      }
    }
    MESSAGE(decoded << " decoded, " << refused << " refused");
    // Both ways out are exercised: damage in what is read is refused (the ordinary decode then
    // reports it); damage only in the AC scans, which are never read, does not matter.
    CHECK(refused > 0);
    CHECK(decoded > 0);
  }
}

TEST_CASE("past the request's deadline render() stops at its next step with 503") {
  const std::string photo = test::read_file(test::corpus("png/plasma_Canopee_3840x2160.png"));
  const auto spec = parse_spec("fit-in/300x200/a.png");
  RenderRequest request;
  request.deadline = already_passed();  // nothing is decoded
  auto over = render(test::as_bytes(photo), *spec, RenderSettings{}, request);
  REQUIRE_FALSE(over.ok());
  CHECK(over.status().code() == Code::kOverloaded);
  // A deadline that passes during the 8 MP decode stops right after it.
  request.deadline = Deadline::after(real_clock, std::chrono::milliseconds(1));
  auto during = render(test::as_bytes(photo), *spec, RenderSettings{}, request);
  REQUIRE_FALSE(during.ok());
  CHECK(during.status().code() == Code::kOverloaded);
  // Without a deadline the same work completes.
  CHECK(render(test::as_bytes(photo), *spec, RenderSettings{}).ok());
}

TEST_CASE(
    "decoders read the frame that was sniffed, or refuse: the limits hold for what is decoded") {
  const cv::Mat photo(480, 640, CV_8UC3, cv::Scalar(30, 90, 160));
  for (const bool progressive : {false, true}) {
    const std::string jpeg = test::write_jpeg(photo, 80, progressive);
    Result<ImageInfo> info = sniff(test::as_bytes(jpeg));
    REQUIRE(info.ok());
    CHECK(decode_image(test::as_bytes(jpeg), *info, 1).ok());
    ImageInfo claimed = *info;  // what a sniffer that was fooled would say
    claimed.width = 16;
    claimed.height = 16;
    for (const int shrink : {1, 8}) {
      Result<cv::Mat> refused = decode_image(test::as_bytes(jpeg), claimed, shrink);
      REQUIRE_FALSE(refused.ok());
      CHECK(refused.status().code() == Code::kUnsupportedMedia);
    }
  }
  std::vector<std::uint8_t> png;
  cv::imencode(".png", photo, png);
  Result<ImageInfo> info = sniff(png);
  REQUIRE(info.ok());
  ImageInfo claimed = *info;
  claimed.height = 48;
  CHECK(decode_image(png, claimed, 1).status().code() == Code::kUnsupportedMedia);
}

TEST_CASE("a decode stops at its deadline, after too many scans, or over its memory budget") {
  const std::string scans = test::jpeg_with_empty_scans(2000, 2000, 300);
  Result<ImageInfo> info = sniff(test::as_bytes(scans));
  REQUIRE(info.ok());
  DecodeBudget budget;
  CHECK(decode_image(test::as_bytes(scans), *info, 1, budget).status().message() ==
        "the JPEG has more than 100 scans");
  budget.max_scans = 1000;
  CHECK(decode_image(test::as_bytes(scans), *info, 1, budget).ok());
  budget.deadline = already_passed();
  CHECK(decode_image(test::as_bytes(scans), *info, 1, budget).status().code() == Code::kOverloaded);
  // 2000x2000 grey: 62,500 blocks of 128 bytes of coefficients = 8 MB.
  DecodeBudget tight;
  tight.max_memory_bytes = 4 << 20;
  CHECK(decode_image(test::as_bytes(scans), *info, 1, tight).status().code() == Code::kTooLarge);
  // A baseline JPEG keeps no whole-image coefficients: the same budget decodes it.
  const std::string baseline = test::write_jpeg(cv::Mat(2000, 2000, CV_8UC1, cv::Scalar(99)));
  CHECK(decode_image(test::as_bytes(baseline), *sniff(test::as_bytes(baseline)), 1, tight).ok());
  // A PNG past its deadline.
  const std::string png = test::png_inflating_past_rows(64, 48, 1 << 20);
  DecodeBudget late;
  late.deadline = already_passed();
  CHECK(decode_image(test::as_bytes(png), *sniff(test::as_bytes(png)), 1, late).status().code() ==
        Code::kOverloaded);
  CHECK(decode_image(test::as_bytes(png), *sniff(test::as_bytes(png)), 1).ok());
}

namespace {

double mean_difference(const std::string& a, const std::string& b) {
  cv::Mat x = cv::imdecode(std::vector<uchar>(a.begin(), a.end()), cv::IMREAD_COLOR);
  cv::Mat y = cv::imdecode(std::vector<uchar>(b.begin(), b.end()), cv::IMREAD_COLOR);
  REQUIRE(x.size() == y.size());
  const cv::Scalar m =
      cv::mean(cv::abs(cv::Mat(x) - cv::Mat(y)) + cv::abs(cv::Mat(y) - cv::Mat(x)));
  return (m[0] + m[1] + m[2]) / 3;
}

// The PNG rows (filter byte 0, then RGB) of a BGR image.
std::string png_rows(const cv::Mat& bgr) {
  std::string rows;
  for (int y = 0; y < bgr.rows; ++y) {
    rows += '\0';
    for (int x = 0; x < bgr.cols; ++x) {
      const cv::Vec3b p = bgr.at<cv::Vec3b>(y, x);
      rows += static_cast<char>(p[2]);
      rows += static_cast<char>(p[1]);
      rows += static_cast<char>(p[0]);
    }
  }
  return rows;
}

}  // namespace

TEST_CASE(
    "an embedded Display P3 profile is converted to sRGB: the thumbnail matches the sRGB one") {
  cv::Mat photo =
      cv::imread(test::corpus("large/sunset_by_Aitzol_Berasategi.jpg"), cv::IMREAD_COLOR);
  REQUIRE_FALSE(photo.empty());
  cv::resize(photo, photo, cv::Size(800, 800 * photo.rows / photo.cols), 0, 0, cv::INTER_AREA);
  const std::string p3 = test::display_p3_profile();
  const cv::Mat stored = test::in_profile(photo, p3);
  RenderSettings managed;
  RenderSettings ignored;
  ignored.color_management = "ignore";
  const auto thumb = [](const std::string& bytes, const RenderSettings& s) {
    Result<Thumbnail> t = render_bytes(bytes, "fit-in/300x300/filters:format(png)", s);
    REQUIRE(t.ok());
    return t->bytes;
  };
  const std::string reference = thumb(test::write_jpeg(photo, 95), managed);

  // JPEG with APP2 ICC segments.
  const std::string jpeg = test::write_jpeg(stored, 95, false, false, p3);
  const double converted = mean_difference(thumb(jpeg, managed), reference);
  const double left_alone = mean_difference(thumb(jpeg, ignored), reference);
  MESSAGE("P3 JPEG, mean difference from the sRGB thumbnail: " << converted << " converted, "
                                                               << left_alone << " ignored");
  CHECK(converted < 2.5);
  CHECK(left_alone > 2 * converted);

  // PNG with an iCCP chunk.
  const std::string iccp =
      test::png_chunk("iCCP", std::string("P3\0\0", 4) + test::zlib_compress(p3));
  const std::string png = test::png_file(stored.cols, stored.rows, 2, 8, png_rows(stored), iccp);
  const std::string png_reference =
      thumb(test::png_file(photo.cols, photo.rows, 2, 8, png_rows(photo)), managed);
  CHECK(mean_difference(thumb(png, managed), png_reference) < 2.5);
  CHECK(mean_difference(thumb(png, ignored), png_reference) >
        2 * mean_difference(thumb(png, managed), png_reference));
}

TEST_CASE("CMYK with a CMYK profile and grey with a grey profile come out as their profiles say") {
  // Four flat patches of inks, stored as Photoshop writes CMYK JPEGs (inverted, Adobe marker).
  cv::Mat inks(64, 64, CV_8UC4);
  inks(cv::Rect(0, 0, 32, 32)).setTo(cv::Scalar(255 - 200, 255, 255, 255));   // cyan
  inks(cv::Rect(32, 0, 32, 32)).setTo(cv::Scalar(255, 255 - 180, 255, 255));  // magenta
  inks(cv::Rect(0, 32, 32, 32)).setTo(cv::Scalar(255, 255, 255 - 220, 255));  // yellow
  inks(cv::Rect(32, 32, 32, 32)).setTo(cv::Scalar(255, 255, 255, 255 - 90));  // grey (black)
  const std::string profile = test::cmyk_profile();
  const std::string jpeg = test::write_jpeg(inks, 100, false, true, profile);
  const cv::Mat expected = test::through_profile(inks, profile, TYPE_CMYK_8_REV);
  const cv::Mat managed = decoded(render_ok(jpeg, "64x64/filters:format(png)"));
  const cv::Mat formula =
      decoded(render_ok(test::write_jpeg(inks, 100, false, true), "64x64/filters:format(png)"));
  const cv::Rect inside(4, 4, 24, 24);  // away from the patches' JPEG-softened edges
  CHECK(mean_abs_diff(managed(inside), expected(inside)) < 2.5);
  CHECK(mean_abs_diff(formula(inside), expected(inside)) > 8.0);  // the profile matters here
  RenderSettings ignore;
  ignore.color_management = "ignore";
  CHECK(mean_abs_diff(decoded(render_ok(jpeg, "64x64/filters:format(png)", ignore))(inside),
                      formula(inside)) < 1.0);
  CHECK(render_ok(jpeg, "64x64").notes.empty());

  // Grey with a linear (gamma 1) profile: the sRGB greys are lighter than the stored values.
  cv::Mat greys(32, 64, CV_8UC1);
  for (int x = 0; x < 64; ++x) greys.col(x).setTo(x * 4);
  const std::string grey_profile = test::linear_grey_profile();
  const cv::Mat grey_expected = test::through_profile(greys, grey_profile, TYPE_GRAY_8);
  const cv::Mat grey_managed = decoded(render_ok(
      test::write_jpeg(greys, 100, false, false, grey_profile), "64x32/filters:format(png)"));
  CHECK(mean_abs_diff(grey_managed, grey_expected) < 2.5);
  cv::Mat stored;
  cv::cvtColor(greys, stored, cv::COLOR_GRAY2BGR);
  CHECK(mean_abs_diff(stored, grey_expected) > 10.0);
}

TEST_CASE(
    "a malformed, truncated or non-RGB colour profile is ignored with a note, never an error") {
  const cv::Mat photo = cv::imread(test::corpus("medium/mate_Storm.jpg"), cv::IMREAD_COLOR);
  REQUIRE_FALSE(photo.empty());
  cv::Mat small;
  cv::resize(photo, small, cv::Size(400, 300));
  const std::string grey_bytes = test::grey_profile();
  const std::string p3 = test::display_p3_profile();
  for (const std::string& profile :
       {std::string("not a profile at all"), p3.substr(0, p3.size() / 2), grey_bytes,
        std::string(200000, '\xff')}) {
    Result<Thumbnail> t =
        render_bytes(test::write_jpeg(small, 90, false, false, profile), "fit-in/100x100");
    REQUIRE(t.ok());
    CHECK(t->size.width == 100);
    REQUIRE(t->notes.size() == 1);
    CHECK(t->notes[0].find("profile") != std::string::npos);
  }
  // A PNG whose iCCP chunk inflates far beyond any profile is read no further than the limit.
  cv::Mat rgb_rows(4, 4, CV_8UC3, cv::Scalar(10, 20, 30));
  const std::string bomb = test::png_chunk(
      "iCCP", std::string("x\0\0", 3) + test::zlib_compress(std::string(64 << 20, '\0')));
  Result<Thumbnail> bombed =
      render_bytes(test::png_file(4, 4, 2, 8, png_rows(rgb_rows), bomb), "fit-in/2x2");
  REQUIRE(bombed.ok());
  CHECK(bombed->notes.empty());  // no profile at all: nothing was converted
  // An sRGB profile, as most web images carry, changes nothing and costs nothing.
  const std::string srgb_bytes = test::srgb_profile();
  CHECK(render_bytes(test::write_jpeg(small, 90, false, false, srgb_bytes), "fit-in/100x100")
            ->bytes == render_bytes(test::write_jpeg(small, 90), "fit-in/100x100")->bytes);
  // Without a profile, or with a usable one, nothing to say.
  CHECK(render_bytes(test::write_jpeg(small, 90), "fit-in/100x100")->notes.empty());
  CHECK(
      render_bytes(test::write_jpeg(small, 90, false, false, p3), "fit-in/100x100")->notes.empty());
}

namespace {

// PNG rows of `pixels` (RGB or RGBA, 8-bit), row y filtered with filter type filters[y % n].
std::string filtered_rows(const cv::Mat& pixels, const std::vector<int>& filters) {
  const int bpp = pixels.channels();
  const std::size_t bytes = static_cast<std::size_t>(pixels.cols * bpp);
  std::string out;
  std::vector<int> zero(bytes, 0);
  for (int y = 0; y < pixels.rows; ++y) {
    const std::uint8_t* x = pixels.ptr<std::uint8_t>(y);
    const std::uint8_t* up = y > 0 ? pixels.ptr<std::uint8_t>(y - 1) : nullptr;
    const int filter = filters[static_cast<std::size_t>(y) % filters.size()];
    out += static_cast<char>(filter);
    for (std::size_t i = 0; i < bytes; ++i) {
      const int a = i >= static_cast<std::size_t>(bpp) ? x[i - static_cast<std::size_t>(bpp)] : 0;
      const int b = up ? up[i] : 0;
      const int c =
          up && i >= static_cast<std::size_t>(bpp) ? up[i - static_cast<std::size_t>(bpp)] : 0;
      int predictor = 0;
      switch (filter) {
        case 1: predictor = a; break;
        case 2: predictor = b; break;
        case 3: predictor = (a + b) / 2; break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: break;
      }
      out += static_cast<char>((x[i] - predictor) & 0xFF);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("PNG rows come out as they went in, whatever their filters, width and alpha") {
  std::mt19937 random(7);
  for (const int channels : {3, 4}) {
    for (const int width : {1, 2, 5, 33, 300}) {
      cv::Mat rgb(23, width, CV_8UC(channels));
      cv::randu(rgb, 0, 256);
      // Smooth patches too, where Average and Paeth choose among close neighbours.
      rgb(cv::Rect(0, 0, std::max(1, width / 2), 10)).setTo(cv::Scalar::all(200));
      for (const std::vector<int>& filters :
           std::vector<std::vector<int>>{{0}, {1}, {2}, {3}, {4}, {4, 3, 2, 1, 0}}) {
        CAPTURE(channels);
        CAPTURE(width);
        CAPTURE(filters[0]);
        const std::string png =
            png_file(width, rgb.rows, channels == 4 ? 6 : 2, 8, filtered_rows(rgb, filters));
        Result<ImageInfo> info = sniff(test::as_bytes(png));
        REQUIRE(info.ok());
        Result<cv::Mat> decoded = decode_image(test::as_bytes(png), *info, 1);
        REQUIRE(decoded.ok());
        cv::Mat expected;
        cv::cvtColor(rgb, expected, channels == 4 ? cv::COLOR_RGBA2BGRA : cv::COLOR_RGB2BGR);
        CHECK(cv::norm(*decoded, expected, cv::NORM_INF) == 0);
      }
    }
  }
}

TEST_CASE("a PNG the whole-image path does not take is decoded or refused as libpng does it") {
  cv::Mat rgb(16, 16, CV_8UC3);
  cv::randu(rgb, 0, 256);
  cv::Mat expected;
  cv::cvtColor(rgb, expected, cv::COLOR_RGB2BGR);
  const std::string rows = filtered_rows(rgb, {4, 1});
  const auto decode = [](const std::string& png) -> Result<cv::Mat> {
    Result<ImageInfo> info = sniff(test::as_bytes(png));
    if (!info.ok()) return info.status();
    return decode_image(test::as_bytes(png), *info, 1);
  };
  // The data split over several IDAT chunks, and compressed data past the last row: decoded.
  const std::string compressed = test::zlib_compress(rows + std::string(4096, '\0'));
  std::string header = test::be32(16) + test::be32(16) + std::string{8, 2, 0, 0, 0};
  const std::string split = std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", header) +
                            png_chunk("IDAT", compressed.substr(0, 10)) +
                            png_chunk("IDAT", compressed.substr(10)) + png_chunk("IEND", "");
  Result<cv::Mat> decoded = decode(split);
  REQUIRE(decoded.ok());
  CHECK(cv::norm(*decoded, expected, cv::NORM_INF) == 0);
  // A damaged CRC on the pixel data, and an unknown filter type: refused, as libpng refuses them.
  std::string damaged = png_file(16, 16, 2, 8, rows);
  damaged[damaged.size() - 13] ^= 0x5A;  // the IDAT's CRC, before IEND's 12 bytes
  CHECK(decode(damaged).status().code() == Code::kUnsupportedMedia);
  std::string bad_filter = rows;
  bad_filter[0] = 9;
  CHECK(decode(png_file(16, 16, 2, 8, bad_filter)).status().code() == Code::kUnsupportedMedia);
  // Data that stops short of the last row: libpng's rows, the missing ones black.
  Result<cv::Mat> short_rows = decode(png_file(16, 16, 2, 8, rows.substr(0, rows.size() / 2)));
  REQUIRE(short_rows.ok());
  CHECK(cv::norm((*short_rows)(cv::Rect(0, 0, 16, 8)), expected(cv::Rect(0, 0, 16, 8)),
                 cv::NORM_INF) == 0);
  CHECK(cv::countNonZero((*short_rows)(cv::Rect(0, 9, 16, 7)).reshape(1)) == 0);
}
