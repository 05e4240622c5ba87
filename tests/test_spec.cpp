// transform/spec: the Thumbor URL grammar, strict parsing and the canonical form.
#include <doctest/doctest.h>

#include "transform/spec.h"

using namespace thimble;
using namespace thimble::transform;

TEST_CASE("every supported URL form parses to its canonical options and image") {
  struct Row {
    const char* url;
    const char* canonical;
    const char* image;
  };
  const Row rows[] = {
      {"photos/cat.jpg", "", "photos/cat.jpg"},
      {"300x200/photos/cat.jpg", "300x200", "photos/cat.jpg"},
      {"300x/a.jpg", "300x0", "a.jpg"},
      {"x200/a.jpg", "0x200", "a.jpg"},
      {"0x0/a.jpg", "", "a.jpg"},
      {"x/a.jpg", "", "a.jpg"},
      {"0300x0200/a.jpg", "300x200", "a.jpg"},
      {"origx100/a.jpg", "origx100", "a.jpg"},
      {"origxorig/a.jpg", "origxorig", "a.jpg"},
      {"-300x-200/a.jpg", "-300x-200", "a.jpg"},
      {"-0x-0/a.jpg", "-0x-0", "a.jpg"},
      {"-x/a.jpg", "-0x0", "a.jpg"},
      {"fit-in/400x300/a.jpg", "fit-in/400x300", "a.jpg"},
      {"full-fit-in/400x300/a.jpg", "full-fit-in/400x300", "a.jpg"},
      {"adaptive-fit-in/400x300/a.jpg", "adaptive-fit-in/400x300", "a.jpg"},
      {"adaptive-full-fit-in/400x300/a.jpg", "adaptive-full-fit-in/400x300", "a.jpg"},
      {"300x200/left/top/a.jpg", "300x200/left/top", "a.jpg"},
      {"300x200/center/middle/a.jpg", "300x200", "a.jpg"},
      {"300x200/right/a.jpg", "300x200/right", "a.jpg"},
      {"300x200/bottom/a.jpg", "300x200/bottom", "a.jpg"},
      {"10x20:510x420/200x0/a.jpg", "10x20:510x420/200x0", "a.jpg"},
      {"0x0:0x0/200x0/a.jpg", "200x0", "a.jpg"},
      {"fit-in/400x300/filters:quality(80):format(webp)/bucket/photos/cat.jpg",
       "fit-in/400x300/filters:format(webp):quality(80)", "bucket/photos/cat.jpg"},
      {"filters:format(jpg)/a.png", "filters:format(jpeg)", "a.png"},
      {"filters:format(png)/a.jpg", "filters:format(png)", "a.jpg"},
      {"300x200/s3/bucket/key%20with%20space.jpg", "300x200", "s3/bucket/key%20with%20space.jpg"},
      {"300x200/my.server.com/some/path/to/image.jpg", "300x200",
       "my.server.com/some/path/to/image.jpg"},
      {"300x200/https://example.com/img/dog.png", "300x200", "https://example.com/img/dog.png"},
      {"300x200/photos/300x200/left/x.jpg", "300x200", "photos/300x200/left/x.jpg"},
      {"meta/300x200/a.jpg", "meta/300x200", "a.jpg"},
      {"meta/a.jpg", "meta", "a.jpg"},
      {"debug/300x300/smart/a.jpg", "debug/300x300/smart", "a.jpg"},
      {"trim/a.jpg", "trim", "a.jpg"},
      {"300x300/smart/a.jpg", "300x300/smart", "a.jpg"},
      {"300x300/left/smart/a.jpg", "300x300/left/smart", "a.jpg"},
      {"trim:top-left/a.jpg", "trim", "a.jpg"},
      {"trim:bottom-right:15/300x200/a.jpg", "trim:bottom-right:15/300x200", "a.jpg"},
      {"meta/trim:10/a.jpg", "meta/trim:10", "a.jpg"},
  };
  for (const auto& row : rows) {
    std::string url(row.url);
    CAPTURE(url);
    auto spec = parse_spec(row.url);
    REQUIRE_MESSAGE(spec.ok(), spec.status().message());
    CHECK(spec->canonical() == row.canonical);
    CHECK(spec->image == row.image);
  }
}

TEST_CASE("parsed fields carry the meaning of each segment") {
  auto spec = parse_spec(
      "10x20:510x420/adaptive-full-fit-in/-300xorig/right/bottom/"
      "filters:quality(55):format(png)/a/b.jpg");
  REQUIRE(spec.ok());
  CHECK(spec->crop == CropBox{10, 20, 510, 420});
  CHECK(spec->fit == FitMode::kFullFitIn);
  CHECK(spec->adaptive);
  CHECK(spec->width == Length{Length::Kind::kPixels, 300});
  CHECK(spec->height.kind == Length::Kind::kOrig);
  CHECK(spec->flip_horizontal);
  CHECK_FALSE(spec->flip_vertical);
  CHECK(spec->halign == HAlign::kRight);
  CHECK(spec->valign == VAlign::kBottom);
  CHECK(spec->quality == 55);
  CHECK(spec->format == ImageFormat::kPng);
  CHECK(spec->image == "a/b.jpg");
}

TEST_CASE("URLs that mean the same transform share one canonical form") {
  auto a = parse_spec("fit-in/0300x200/center/middle/filters:quality(80):format(jpg)/a.jpg");
  auto b = parse_spec("fit-in/300x200/filters:format(jpeg):quality(80)/a.jpg");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->canonical() == b->canonical());
  auto c = parse_spec("fit-in/300x201/a.jpg");
  REQUIRE(c.ok());
  CHECK(c->canonical() != a->canonical());
}

TEST_CASE("malformed URLs, unknown filters and bad arguments are 400s that name the problem") {
  struct Row {
    const char* url;
    const char* message;
  };
  const Row rows[] = {
      {"300x200/", "the URL names no image"},
      {"", "the URL names no image"},
      {"filters:quality(80)", "filters: must end with ')' followed by '/' and the image"},
      {"fit-in/filters:quality(80)", "filters: must end with ')' followed by '/' and the image"},
      {"filters:quality(80)/", "the URL names no image"},
      {"filters:sepia()/a.jpg", "unknown filter 'sepia'"},
      {"filters:frame(a.png)/a.jpg", "filter 'frame' is not supported"},
      {"filters:quality(101)/a.jpg",
       "quality(101): quality must be a whole number from 0 to 100, or auto"},
      {"filters:quality(abc)/a.jpg",
       "quality(abc): quality must be a whole number from 0 to 100, or auto"},
      {"filters:quality()/a.jpg",
       "quality(): quality must be a whole number from 0 to 100, or auto"},
      {"filters:quality(80):quality(70)/a.jpg", "quality() is given twice"},
      {"filters:format(tiff)/a.jpg",
       "format(tiff): output format must be jpeg, png, webp, avif or gif"},
      {"filters:format(heic)/a.jpg",
       "format(heic): HEIC output is not supported (browsers do not show it)"},
      {"filters:format(webp):format(png)/a.jpg", "format() is given twice"},
      {"filters:quality(80)x/a.jpg", "filters: must end with ')'"},
      {"filters:quality(80):/a.jpg", "filters: must end with ')'"},
      {"filters:quality(80)x(1)/a.jpg", "filters: expected ':' between filters"},
      {"filters:quality(80)::format(png)/a.jpg", "filters: ':format' is not a filter name"},
      {"filters:Quality(80)/a.jpg", "filters: 'Quality' is not a filter name"},
      {"filters:quality(80/a.jpg)/b.jpg", "quality(80/a.jpg): quality must be"},
      {"filters:(80)/a.jpg", "filters: expected name(arguments)"},
      {"300x200/fit-in/a.jpg", "fit-in is out of order"},
      {"300x200/filters:quality(80)x/a.jpg", "filters: must end with ')'"},
      {"fit-in/300x200/meta/a.jpg", "meta is out of order"},
      {"10x20:5x420/a.jpg", "crop: right and bottom must be greater than left and top"},
      {"99999x1/a.jpg", "99999x1: width and height must be at most 65535"},
      {"fit-in/-1000000x/a.jpg", "-1000000x: width and height must be at most 65535"},
      {"trim:443/a.jpg", "trim: the tolerance must be a whole number from 0 to 442"},
      {"trim:middle/a.jpg", "trim: the tolerance must be"},
      {"trim:top-left:/a.jpg", "trim: the tolerance must be"},
  };
  for (const auto& row : rows) {
    std::string url(row.url);
    CAPTURE(url);
    auto spec = parse_spec(row.url);
    REQUIRE_FALSE(spec.ok());
    CHECK(spec.status().code() == Code::kBadRequest);
    CHECK(spec.status().message().find(row.message) != std::string::npos);
  }
}

TEST_CASE("extract_focal() turns a nested Thumbor URL's crop into a focal point of its image") {
  auto one = parse_spec(
      "300x100/filters:extract_focal()/localhost:8888/unsafe/100x150:300x200/"
      "https://upload.wikimedia.org/a/cat.jpg");
  REQUIRE(one.ok());
  CHECK(one->image == "https://upload.wikimedia.org/a/cat.jpg");
  REQUIRE(one->focal_boxes.size() == 1);
  CHECK(one->focal_boxes[0] == CropBox{100, 150, 300, 200});
  CHECK(one->canonical() == "300x100/filters:focal(100x150:300x200)");
  // Two levels: the outer nested URL has no crop, the inner one has.
  auto two = parse_spec(
      "filters:extract_focal()/cdn.example.com/unsafe/300x200/"
      "origin.example.com/FQjiRjoVp42Nl25AbGL6IweUUdI=/10x20:30x40/img.jpg");
  REQUIRE(two.ok());
  CHECK(two->image == "img.jpg");
  CHECK(two->focal_boxes.at(0) == CropBox{10, 20, 30, 40});
  // A plain key is left alone.
  auto plain = parse_spec("filters:extract_focal()/photos/cat.jpg");
  REQUIRE(plain.ok());
  CHECK(plain->image == "photos/cat.jpg");
  CHECK(plain->focal_boxes.empty());
  CHECK_FALSE(parse_spec("filters:extract_focal(1)/photos/cat.jpg").ok());
}

TEST_CASE("the configured filter limits refuse costly arguments with a 400 naming the filter") {
  SpecLimits limits;
  limits.max_filters = 3;
  limits.max_blur_radius = 20;
  limits.max_convolution_size = 3;
  limits.max_round_corner_radius = 50;
  limits.max_watermarks = 1;
  limits.min_max_bytes = 2000;
  struct Row {
    const char* filters;
    const char* names;  // a word the message must contain; "" = within the limits
  } rows[] = {
      {"blur(20)", ""},
      {"blur(21)", "blur(21"},
      {"convolution(1;2;1;2;4;2;1;2;1,3,true)", ""},
      {"convolution(1;1;1;1;1,5,false)", "convolution()"},
      {"convolution(1;1;1;1;1;1;1;1;1;1;1;1;1;1;1,3,false)", "convolution()"},  // 5 rows
      {"round_corner(50,0,0,0)", ""},
      {"round_corner(51,0,0,0)", "round_corner(51"},
      {"round_corner(10|60,0,0,0)", "round_corner(10|60"},
      {"watermark(a.png,0,0,0)", ""},
      {"watermark(a.png,0,0,0):watermark(b.png,0,0,0)", "watermark()"},
      {"max_bytes(2000)", ""},
      {"max_bytes(1999)", "max_bytes(1999)"},
      {"grayscale():equalize():brightness(10)", ""},
      {"grayscale():equalize():brightness(10):contrast(5)", "number of filters"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.filters);
    Result<ThumbnailSpec> spec = parse_spec(std::string("filters:") + row.filters + "/a.jpg");
    REQUIRE_MESSAGE(spec.ok(), spec.status().message());
    Status within = check_limits(*spec, limits);
    if (*row.names == '\0') {
      CHECK(within.ok());
    } else {
      REQUIRE_FALSE(within.ok());
      CHECK(within.code() == Code::kBadRequest);
      CHECK_MESSAGE(within.message().find(row.names) != std::string::npos, within.message());
    }
  }
  // The defaults let every ordinary URL through.
  CHECK(check_limits(*parse_spec("filters:blur(150):round_corner(20,255,255,255):"
                                 "watermark(a.png,10,10,50):max_bytes(50000)/a.jpg"),
                     SpecLimits{})
            .ok());
}

TEST_CASE("the canonical path parses back to the same options and image, whatever the image") {
  // Found by fuzzing: `0x0/0x0/a.jpg` is the image `0x0/a.jpg` unchanged, whose canonical form
  // "" + image would be read as the size 0x0 of `a.jpg`, and its stored result served for that.
  struct Row {
    const char* url;
    const char* path;
  } rows[] = {
      {"fit-in/300x200/photos/cat.jpg", "fit-in/300x200/photos/cat.jpg"},
      {"0x0/0x0/a.jpg", "0x0/center/middle/0x0/a.jpg"},
      {"0x0/center/middle/center/a.jpg", "0x0/center/middle/center/a.jpg"},
      {"0x0/1x1:2x2/a.jpg", "0x0/center/middle/1x1:2x2/a.jpg"},
      {"300x200/center/middle/top/a.jpg", "300x200/center/middle/top/a.jpg"},
      {"300x200/filters:quality(80)/0x0/a.jpg", "300x200/filters:quality(80)/0x0/a.jpg"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.url);
    Result<ThumbnailSpec> spec = parse_spec(row.url);
    REQUIRE(spec.ok());
    CHECK(spec->path() == row.path);
    Result<ThumbnailSpec> again = parse_spec(spec->path());
    REQUIRE(again.ok());
    CHECK(again->image == spec->image);
    CHECK(again->canonical() == spec->canonical());
  }
}

TEST_CASE(
    "extract_focal() nested many levels deep is read once per level (fuzzing found 10^depth)") {
  std::string url = "filters:extract_focal()/h/";
  for (int i = 0; i < 40; ++i) url += "unsafe/filters:extract_focal()/h/";
  url += "unsafe/10x10:20x20/inner.jpg";
  Result<ThumbnailSpec> spec = parse_spec(url);  // before the fix: 10^40 nested parses
  REQUIRE(spec.ok());
  CHECK(spec->focal_boxes.empty());  // the crop is deeper than the 10 levels followed
}

TEST_CASE("decimal arguments keep a canonical form the grammar reads back (fuzzing: 2e+07)") {
  for (const char* url : {"filters:convolution(1;2;1;2;4;2;1;20000000;1,3,true)/a.jpg",
                          "filters:saturation(0.0000000000000000000001)/a.jpg"}) {
    CAPTURE(url);
    Result<ThumbnailSpec> spec = parse_spec(url);
    REQUIRE(spec.ok());
    CHECK(spec->canonical().find("e+") == std::string::npos);  // no exponent
    CHECK(spec->canonical().find("e-") == std::string::npos);
    Result<ThumbnailSpec> again = parse_spec(spec->path());
    REQUIRE_MESSAGE(again.ok(), again.status().message());
    CHECK(again->canonical() == spec->canonical());
  }
}
