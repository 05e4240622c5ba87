#include "seeds.h"

#include <libheif/heif.h>

#include <algorithm>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "../hostile_images.h"
#include "../icc_profiles.h"
#include "../image_writer.h"
#include "targets.h"
#include "transform/encode.h"

namespace thimble::fuzz {
namespace {

std::string read(const std::filesystem::path& path) {
  std::ostringstream out;
  out << std::ifstream(path, std::ios::binary).rdbuf();
  return out.str();
}

std::string encode(const cv::Mat& image, const char* extension, std::vector<int> params = {}) {
  std::vector<std::uint8_t> bytes;
  cv::imencode(extension, image, bytes, params);
  return {bytes.begin(), bytes.end()};
}

// `jpeg` with the EXIF (APP1) segment of `donor` inserted after its SOI marker.
std::string with_exif_of(const std::string& jpeg, const std::string& donor) {
  for (std::size_t i = 2; i + 4 <= donor.size() && static_cast<std::uint8_t>(donor[i]) == 0xFF;) {
    const auto marker = static_cast<std::uint8_t>(donor[i + 1]);
    const std::size_t length =
        static_cast<std::uint8_t>(donor[i + 2]) << 8 | static_cast<std::uint8_t>(donor[i + 3]);
    if (marker == 0xE1) return jpeg.substr(0, 2) + donor.substr(i, 2 + length) + jpeg.substr(2);
    if (marker == 0xDA) break;
    i += 2 + length;
  }
  return jpeg;
}

// `image` (BGR) as HEIC (x265) or AVIF (aom) through libheif's encoder.
std::string heif_of(const cv::Mat& image, heif_compression_format compression) {
  heif_context* context = heif_context_alloc();
  heif_encoder* encoder = nullptr;
  heif_context_get_encoder_for_format(context, compression, &encoder);
  heif_encoder_set_lossy_quality(encoder, 50);
  heif_image* pixels = nullptr;
  heif_image_create(image.cols, image.rows, heif_colorspace_RGB, heif_chroma_interleaved_RGB,
                    &pixels);
  heif_image_add_plane(pixels, heif_channel_interleaved, image.cols, image.rows, 8);
  int stride = 0;
  std::uint8_t* plane = heif_image_get_plane(pixels, heif_channel_interleaved, &stride);
  cv::Mat rgb(image.rows, image.cols, CV_8UC3, plane, static_cast<std::size_t>(stride));
  cv::cvtColor(image, rgb, cv::COLOR_BGR2RGB);
  heif_context_encode_image(context, pixels, encoder, nullptr, nullptr);
  std::string out;
  heif_writer writer{};
  writer.writer_api_version = 1;
  writer.write = [](heif_context*, const void* data, size_t size, void* into) {
    static_cast<std::string*>(into)->append(static_cast<const char*>(data), size);
    return heif_error{heif_error_Ok, heif_suberror_Unspecified, "ok"};
  };
  heif_context_write(context, &writer, &out);
  heif_image_release(pixels);
  heif_encoder_release(encoder);
  heif_context_free(context);
  return out;
}

// Three frames that differ, as an animation in `format` (GIF or WebP) by Thimble's encoder.
std::string animation_of(const cv::Mat& image, transform::ImageFormat format) {
  transform::Frames frames;
  for (int i = 0; i < 3; ++i) {
    cv::Mat frame = image.clone();
    frame(cv::Rect(8 * i, 4, 8, 8)).setTo(cv::Scalar(0, 255, 255));
    frames.images.push_back(frame);
    frames.durations_ms.push_back(50 + 10 * i);
  }
  frames.loop_count = 2;
  return *transform::encode_animation(frames, format, {}, {});
}

std::vector<std::string> images(const std::filesystem::path& samples) {
  const cv::Mat photo = cv::imread((samples / "bridge.jpg").string(), cv::IMREAD_COLOR);
  const cv::Mat alpha = cv::imread((samples / "gulp-alpha.png").string(), cv::IMREAD_UNCHANGED);
  cv::Mat small, small_alpha, grey, deep;
  cv::resize(photo, small, {256, 144}, 0, 0, cv::INTER_AREA);
  cv::resize(alpha, small_alpha, {96, 60}, 0, 0, cv::INTER_AREA);
  cv::cvtColor(small, grey, cv::COLOR_BGR2GRAY);
  small.convertTo(deep, CV_16U, 257);
  const std::string baseline = encode(small, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 70});
  cv::Mat tiny, tiny_alpha;
  cv::resize(small, tiny, {48, 28}, 0, 0, cv::INTER_AREA);
  cv::resize(small_alpha, tiny_alpha, {32, 20}, 0, 0, cv::INTER_AREA);
  cv::Mat tiny_copy = tiny.clone();
  return {
      baseline,
      encode(small, ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}),  // 4:2:0: chroma from DC at 1/8
      test::write_jpeg(small, 85, /*progressive=*/true, /*full_chroma=*/true),  // DC-only path
      test::write_jpeg(cv::Mat(48, 64, CV_8UC4, cv::Scalar(10, 200, 30, 0))),   // CMYK
      encode(grey, ".jpg"),
      with_exif_of(baseline, read(samples / "landscape-exif6.jpg")),
      encode(small, ".png"),
      encode(small_alpha, ".png"),
      encode(grey, ".png"),
      encode(deep, ".png"),
      encode(small, ".webp", {cv::IMWRITE_WEBP_QUALITY, 60}),
      encode(small_alpha, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}),  // lossless, with alpha
      // HEIC, AVIF, GIF (still, animated, with transparency) and animated WebP.
      heif_of(tiny, heif_compression_HEVC),
      heif_of(tiny, heif_compression_AV1),
      // Odd sides: libheif writes one tile a pixel larger, cropped by a grid description.
      heif_of(tiny(cv::Rect(0, 0, 47, 27)).clone(), heif_compression_HEVC),
      *transform::encode_image(tiny_copy, transform::ImageFormat::kGif, {}, {}),
      *transform::encode_image(tiny_alpha, transform::ImageFormat::kGif, {}, {}),
      animation_of(tiny, transform::ImageFormat::kGif),
      animation_of(tiny, transform::ImageFormat::kWebp),
      // Hostile layouts that once got past the limits: a real frame hidden behind `FF 00 <len>`
      // (in the limits here, so the render target decodes it), a progressive JPEG of empty
      // scans, and a PNG whose zlib stream goes on past its last row.
      test::jpeg_with_hidden_frame(640, 480, false),
      test::jpeg_with_hidden_frame(640, 480, true),
      test::jpeg_with_empty_scans(2000, 2000, 150),
      test::png_inflating_past_rows(64, 48, 8u << 20),
      // Embedded colour profiles: a Display P3 JPEG (APP2 segments) and PNG (iCCP), converted.
      test::write_jpeg(small, 80, false, false, test::display_p3_profile()),
      test::write_jpeg(cv::Mat(24, 32, CV_8UC4, cv::Scalar(40, 200, 90, 30)), 80, false, false,
                       test::cmyk_profile()),
      test::write_jpeg(grey, 80, false, false, test::linear_grey_profile()),
      test::png_file(2, 1, 2, 8, std::string("\0\xff\0\0\0\xff\0", 7),
                     test::png_chunk("iCCP", std::string("P3\0\0", 4) +
                                                 test::zlib_compress(test::display_p3_profile()))),
  };
}

const char* const kUrls[] = {
    "/unsafe/300x200/photos/cat.jpg",
    "/unsafe/fit-in/400x300/filters:quality(80)/photos/cat.jpg",
    "/unsafe/debug/meta/trim:bottom-right:10/10x20:300x400/adaptive-full-fit-in/-300x-0/left/"
    "top/smart/filters:format(webp):fill(blur)/a/b.png",
    "/unsafe/orig x orig/a.jpg",
    "/unsafe/0x0/filters:brightness(10):contrast(-10):saturation(1.5):rgb(10,-10,0):grayscale():"
    "equalize():noise(10):sharpen(1.5,0.5,true):blur(3,1.5)/a.jpg",
    "/unsafe/filters:convolution(1;2;1;2;4;2;1;2;1,3,true):rotate(90):round_corner(20|10,255,0,0,1)"
    ":colorize(10,20,30,ff0000):curve([(0,0),(255,255)],[],[],[]):background_color(red)/a.jpg",
    "/unsafe/filters:watermark(logo.png,-10,10p,50,20,30):watermark(m.png,center,repeat,0)/a.jpg",
    "/unsafe/filters:fill(transparent):strip_icc():strip_exif():no_upscale():upscale():stretch():"
    "proportion(0.5):max_bytes(5000):max_age(60):focal(1x2:30x40):format(png)/a.jpg",
    "/unsafe/filters:extract_focal()/host/unsafe/10x10:20x20/inner.jpg",
    "/unsafe/preset:thumb/a.jpg",
    "/unsafe/%2e%2e/secret.jpg",
    "/Cmg8rF4sVMI_4pCzc2PE5Op8a_I=/300x200/photos/cat.jpg",
};

// ListObjectsV2 pages as S3 and its look-alikes write them, and a few damaged ones.
const char* const kListings[] = {
    R"(<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>photos</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>cat.jpg</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>81234</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>dogs/rex.png</Key><Size>1024</Size></Contents></ListBucketResult>)",
    R"(<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken><Contents><Key>a&amp;b &lt;c&gt; &apos;d&apos;.jpg</Key><Size>7</Size></Contents></ListBucketResult>)",
    R"(<ListBucketResult><Contents><Key>tab&#x9;and&#10;newline-&#233;-&#x1F600;.jpg</Key><Size>18446744073709551615</Size></Contents></ListBucketResult>)",
    R"(<ListBucketResult><Contents><Key>photos/</Key><Size>0</Size></Contents><CommonPrefixes><Prefix>photos/2026/</Prefix></CommonPrefixes></ListBucketResult>)",
    R"(<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>)",
    R"(<ListBucketResult><Contents><Size>12</Size></Contents></ListBucketResult>)",
    R"(<ListBucketResult><Contents><Key>unterminated.jpg</Contents></ListBucketResult>)",
    R"(<ListBucketResult><Contents><Key>bad &unknown; entity</Key></Contents></ListBucketResult>)",
    R"(<ListBucketResult><Contents><Key>&#0;</Key></Contents><Contents><Key>&#x110000;</Key></Contents></ListBucketResult>)",
    R"(<ListBucketResult><Contents><Key>&#-1;&#xZZ;</Key></Contents></ListBucketResult>)",
    R"(<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>)",
    R"(<ListBucketResult><Contents><Contents><Key>nested</Key></Contents></Contents><NextContinuationToken></NextContinuationToken></ListBucketResult>)",
    "",
};

}  // namespace

std::vector<std::string> seeds_for(std::string_view target,
                                   const std::filesystem::path& samples_dir) {
  if (target == "url") return {std::begin(kUrls), std::end(kUrls)};
  if (target == "s3_listing") return {std::begin(kListings), std::end(kListings)};
  std::vector<std::string> originals = images(samples_dir);
  if (target == "sniff") return originals;
  // render: each original once per URL it is run through (the first byte picks the URL).
  std::vector<std::string> seeds;
  for (const std::string& original : originals) {
    for (int url = 0; url < kRenderUrls; ++url) seeds.push_back(static_cast<char>(url) + original);
  }
  return seeds;
}

}  // namespace thimble::fuzz
