// transform/auto_quality: the perceptual quality search behind quality(auto) and
// output.quality: auto, and the SSIM it is judged by.
#include <doctest/doctest.h>

#include <opencv2/imgproc.hpp>

#include "conf/config.h"
#include "render_support.h"
#include "transform/auto_quality.h"
#include "transform/decode.h"
#include "transform/encode.h"

using namespace thimble;
using namespace thimble::transform;
using test::rendering::render_ok;

namespace {

// Any thumbnail Thimble made, decoded by its own decoders (JPEG, WebP, AVIF and PNG alike).
cv::Mat pixels_of(const std::string& bytes) {
  const auto data = test::as_bytes(bytes);
  Result<ImageInfo> info = sniff(data);
  REQUIRE(info.ok());
  Result<cv::Mat> image = decode_image(data, *info, 1);
  REQUIRE(image.ok());
  return *image;
}

const char* const kPhotos[] = {"exif/Landscape_1.jpg",
                               "faces/Giunchedi_Filippo_January_2015_01.jpg",
                               "faces/no_face.jpg",
                               "medium/Picture_1A_by_freespace.jpg",
                               "medium/mate_RainDrops.jpg",
                               "medium/mate_Storm.jpg",
                               "large/Bridge_by_Sander_Klootwijk.jpg",
                               "large/Kleiber_by_Lukas_Baubkus.jpg"};

}  // namespace

TEST_CASE("quality(auto) parses, keeps its place in the canonical form, and is given once") {
  auto spec = parse_spec("fit-in/300x200/filters:quality(auto):format(webp)/a.jpg");
  REQUIRE(spec.ok());
  CHECK(spec->auto_quality);
  CHECK_FALSE(spec->quality);
  CHECK(spec->canonical() == "fit-in/300x200/filters:format(webp):quality(auto)");
  auto twice = parse_spec("filters:quality(auto):quality(80)/a.jpg");
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.status().message() == "quality() is given twice");
  CHECK_FALSE(parse_spec("filters:quality(Auto)/a.jpg").ok());
}

TEST_CASE("luma SSIM is 1 for the same image and falls as it is degraded") {
  const cv::Mat photo = pixels_of(test::read_file(test::corpus("faces/no_face.jpg")));
  CHECK(luma_ssim(photo, photo) == doctest::Approx(1.0));
  cv::Mat slightly, heavily;
  cv::GaussianBlur(photo, slightly, cv::Size(3, 3), 0.6);
  cv::GaussianBlur(photo, heavily, cv::Size(9, 9), 3);
  const double a = luma_ssim(photo, slightly), b = luma_ssim(photo, heavily);
  CHECK(a < 1.0);
  CHECK(b < a);
  CHECK(b > 0.2);
  CHECK(luma_ssim(photo, cv::Mat(10, 10, CV_8UC3)) == 0);  // sizes differ
}

TEST_CASE("a baseline and a progressive JPEG of one quality decode to the same pixels") {
  // What lets the search try baseline encodes (a third of the time) and write progressive.
  cv::Mat image = pixels_of(test::read_file(test::corpus("exif/Landscape_1.jpg")));
  cv::resize(image, image, cv::Size(300, 200), 0, 0, cv::INTER_AREA);
  RenderSettings baseline, progressive;
  baseline.jpeg_progressive = false;
  const ThumbnailSpec spec;
  for (int quality : {35, 62, 90}) {
    CAPTURE(quality);
    auto a = encode_image(image, ImageFormat::kJpeg, spec, baseline, quality);
    auto b = encode_image(image, ImageFormat::kJpeg, spec, progressive, quality);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(*a != *b);
    CHECK(cv::norm(pixels_of(*a), pixels_of(*b), cv::NORM_INF) == 0);
  }
}

TEST_CASE("quality(auto) reaches the SSIM target at the quality each photo needs") {
  RenderSettings settings;
  int storm = 0, landscape = 0;
  for (const char* name : kPhotos) {
    CAPTURE(name);
    const std::string original = test::read_file(test::corpus(name));
    const Thumbnail automatic = render_ok(original, "fit-in/300x200/filters:quality(auto)");
    // The unencoded thumbnail: the same pipeline written losslessly.
    const Thumbnail lossless = render_ok(original, "fit-in/300x200/filters:format(png)");
    CHECK(automatic.format == ImageFormat::kJpeg);
    REQUIRE(automatic.auto_quality >= settings.auto_quality_min);
    REQUIRE(automatic.auto_quality <= settings.auto_quality_max);
    const double ssim = luma_ssim(pixels_of(automatic.bytes), pixels_of(lossless.bytes));
    CAPTURE(automatic.auto_quality);
    CAPTURE(ssim);
    if (automatic.auto_quality < settings.auto_quality_max) {
      CHECK(ssim >= settings.auto_quality_ssim);
    }
    // A few quality steps lower would not have been enough: the search found the low end.
    if (automatic.auto_quality > settings.auto_quality_min + 3) {
      const Thumbnail lower =
          render_ok(original, "fit-in/300x200/filters:quality(" +
                                  std::to_string(automatic.auto_quality - 3) + ")");
      CHECK(luma_ssim(pixels_of(lower.bytes), pixels_of(lossless.bytes)) <
            settings.auto_quality_ssim);
    }
    if (std::string(name) == "medium/mate_Storm.jpg") storm = automatic.auto_quality;
    if (std::string(name) == "exif/Landscape_1.jpg") landscape = automatic.auto_quality;
  }
  // A soft sky needs far less than a detailed landscape for the same look.
  CHECK(storm + 20 < landscape);
}

TEST_CASE("a fixed quality leaves some photos below the target, quality(auto) none") {
  // What auto is for: the same look on every photo. A fixed quality is too low for detailed
  // photos and spends bytes on soft ones; auto spends fewer bytes on the soft ones.
  RenderSettings settings;
  double lowest_fixed = 1, lowest_auto = 1;
  std::size_t soft_fixed = 0, soft_auto = 0;
  for (const char* name : kPhotos) {
    CAPTURE(name);
    const std::string original = test::read_file(test::corpus(name));
    const cv::Mat unencoded =
        pixels_of(render_ok(original, "fit-in/300x200/filters:format(png)").bytes);
    const Thumbnail fixed = render_ok(original, "fit-in/300x200");
    const Thumbnail automatic = render_ok(original, "fit-in/300x200/filters:quality(auto)");
    lowest_fixed = std::min(lowest_fixed, luma_ssim(pixels_of(fixed.bytes), unencoded));
    if (automatic.auto_quality < settings.auto_quality_max) {
      lowest_auto = std::min(lowest_auto, luma_ssim(pixels_of(automatic.bytes), unencoded));
    }
    if (automatic.auto_quality < settings.jpeg_quality) {
      soft_fixed += fixed.bytes.size();
      soft_auto += automatic.bytes.size();
    }
  }
  CHECK(lowest_fixed < settings.auto_quality_ssim);
  CHECK(lowest_auto >= settings.auto_quality_ssim);
  CHECK(soft_auto > 0);
  CHECK(soft_auto < soft_fixed);
}

TEST_CASE("output.quality: auto applies to JPEG, WebP and AVIF, and a URL's quality(N) wins") {
  const std::string photo = test::read_file(test::corpus("medium/mate_Storm.jpg"));
  RenderSettings settings;
  settings.quality = "auto";
  for (const char* options : {"fit-in/300x200", "fit-in/300x200/filters:format(webp)",
                              "fit-in/300x200/filters:format(avif)"}) {
    CAPTURE(options);
    const Thumbnail t = render_ok(photo, options, settings);
    CHECK(t.auto_quality > 0);
    CHECK(pixels_of(t.bytes).cols == 300);
  }
  CHECK(render_ok(photo, "fit-in/300x200/filters:quality(85)", settings).auto_quality == 0);
  // PNG and GIF have no quality: quality(auto) leaves them as they are.
  const Thumbnail png = render_ok(photo, "fit-in/300x200/filters:format(png):quality(auto)");
  CHECK(png.format == ImageFormat::kPng);
  CHECK(png.auto_quality == 0);
  // Fixed by default.
  CHECK(render_ok(photo, "fit-in/300x200").auto_quality == 0);
}

TEST_CASE("the search is bounded, and the deadline stops it") {
  cv::Mat image = pixels_of(test::read_file(test::corpus("exif/Landscape_1.jpg")));
  cv::resize(image, image, cv::Size(300, 200), 0, 0, cv::INTER_AREA);
  RenderSettings settings;
  ThumbnailSpec spec;
  spec.auto_quality = true;
  auto choice = encode_auto_quality(image, ImageFormat::kJpeg, spec, settings, Deadline());
  REQUIRE(choice.ok());
  // The tries, one more when none reached the target, and the final progressive encode.
  CHECK(choice->tries <= kAutoQualityTries + 2);
  // A target no quality reaches: the highest, and it is not encoded again when the search
  // already tried it (87, 89, 90, then the progressive encode of 90).
  RenderSettings unreachable = settings;
  unreachable.auto_quality_ssim = 0.9999;
  unreachable.auto_quality_min = 85;
  unreachable.auto_quality_max = 90;
  auto top = encode_auto_quality(image, ImageFormat::kJpeg, spec, unreachable, Deadline());
  REQUIRE(top.ok());
  CHECK(top->quality == 90);
  CHECK(top->tries == 4);
  auto late = encode_auto_quality(image, ImageFormat::kJpeg, spec, settings,
                                  test::rendering::already_passed());
  REQUIRE_FALSE(late.ok());
  CHECK(late.status().code() == Code::kOverloaded);
}

TEST_CASE("output.quality and its search bounds are read and checked") {
  test::TempDir dir;
  const std::string minimal = "security: {keys: [k1]}\nsource: {file: {root: .}}\n";
  auto config = conf::load_config_text(minimal +
                                           "output: {quality: auto, auto_quality_ssim: 0.985, "
                                           "auto_quality_min: 40, auto_quality_max: 85}\n",
                                       dir.path().string(), nullptr);
  REQUIRE(config.ok());
  CHECK(config->output.quality == "auto");
  CHECK(config->output.auto_quality_ssim == doctest::Approx(0.985));
  CHECK(config->output.auto_quality_min == 40);
  CHECK(config->output.auto_quality_max == 85);
  const struct {
    const char* yaml;
    const char* expected;
  } rows[] = {
      {"output: {quality: best}", "output.quality: expected one of: fixed auto"},
      {"output: {auto_quality_ssim: 1.5}", "output.auto_quality_ssim: expected a number from 0.5"},
      {"output: {auto_quality_ssim: high}", "got 'high'"},
      {"output: {auto_quality_min: 70, auto_quality_max: 60}",
       "output.auto_quality_max: must be at least output.auto_quality_min (70)"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.yaml);
    auto bad = conf::load_config_text(minimal + row.yaml + "\n", dir.path().string(), nullptr);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().message().find(row.expected) != std::string::npos);
  }
}
