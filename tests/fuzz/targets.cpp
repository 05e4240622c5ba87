#include "targets.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "proxy/sources/s3_listing.h"
#include "signing/signer.h"
#include "transform/meta.h"
#include "transform/pipeline.h"
#include "transform/sniff.h"
#include "transform/spec.h"

namespace thimble::fuzz {
namespace {

// A broken invariant: say which, then abort so that libFuzzer keeps the input.
void require(bool holds, const char* invariant) {
  if (holds) return;
  std::fprintf(stderr, "fuzz invariant broken: %s\n", invariant);
  std::abort();
}

std::string_view as_text(Input data) {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

// The canonical path of a parsed URL (the result storage key) means the same transform.
void check_canonical(std::string_view options_and_image) {
  Result<transform::ThumbnailSpec> spec = transform::parse_spec(options_and_image);
  if (!spec.ok()) {
    require(spec.status().code() == Code::kBadRequest, "a URL that does not parse is a 400");
    return;
  }
  (void)transform::check_limits(*spec, transform::SpecLimits{});
  Result<transform::ThumbnailSpec> reparsed = transform::parse_spec(spec->path());
  require(reparsed.ok(), "the canonical path parses");
  require(reparsed->canonical() == spec->canonical(), "the canonical path keeps the options");
  require(reparsed->image == spec->image, "the canonical path keeps the image");
}

}  // namespace

void url(Input data) {
  static const signing::UrlSigner signer({"fuzz-key", "older-key"}, /*allow_unsafe=*/true);
  const std::string_view text = as_text(data);
  // As a whole request path, signature first.
  Result<std::string_view> verified = signer.verify(text);
  if (verified.ok()) check_canonical(*verified);
  // As what follows a good signature.
  check_canonical(text);
  // Whatever the path, what Thimble signs, Thimble verifies, and hands back unchanged (sign()
  // ignores one leading '/').
  const std::string_view path = text.starts_with('/') ? text.substr(1) : text;
  if (path.empty()) return;  // nothing to sign: "missing signature" is the right answer
  const std::string signed_path = signer.sign(text);
  Result<std::string_view> back = signer.verify(signed_path);
  require(back.ok() && *back == path, "a signed path verifies to itself");
}

void sniff(Input data) {
  Result<transform::ImageInfo> info = transform::sniff(data);
  if (info.ok()) {
    require(info->width > 0 && info->height > 0, "a sniffed image has a size");
    require(info->orientation >= 1 && info->orientation <= 8, "orientation is 1-8");
  } else {
    require(info.status().code() == Code::kUnsupportedMedia, "a bad header is a 415");
  }
  const int orientation = transform::exif_orientation(data);
  require(orientation >= 1 && orientation <= 8, "EXIF orientation is 1-8");
}

void render(Input data) {
  static constexpr std::array<std::string_view, kRenderUrls> kUrls = {
      "fit-in/64x64/x",
      "fit-in/16x16/x",  // 1/8-scale decodes, DC-only for progressive JPEGs
      "40x30/x",
      "-30x-20/right/bottom/x",
      "10x10:200x150/50x0/x",
      "trim/48x48/filters:format(png)/x",
      "64x64/smart/x",
      "full-fit-in/40x30/filters:fill(blur):format(webp)/x",
      "fit-in/100x100/filters:rotate(90):round_corner(8,255,0,0):blur(2):format(png)/x",
      "fit-in/64x64/filters:max_bytes(1500):quality(90)/x",
      "0x0/filters:grayscale():sharpen(2,1,true):format(webp)/x",
      "meta/fit-in/64x64/smart/x",           // and the reduced decode smart/ detects on
      "fit-in/32x32/filters:format(gif)/x",  // the palette and the animated GIF writer
      "fit-in/24x24/filters:format(avif)/x",
  };
  if (data.empty()) return;
  static const auto specs = [] {
    transform::use_one_thread_per_render();
    std::array<transform::ThumbnailSpec, kUrls.size()> parsed;
    for (std::size_t i = 0; i < kUrls.size(); ++i) parsed[i] = *transform::parse_spec(kUrls[i]);
    return parsed;
  }();
  transform::RenderSettings settings;
  settings.max_source_pixels = 4u << 20;  // keeps each run fast; the limits path is covered too
  settings.max_source_dimension = 8192;
  settings.max_output_dimension = 1024;
  settings.max_frames = 64;
  settings.max_animation_pixels = 4u << 20;
  settings.face_cascade.clear();  // smart/ by corner features: the detector is not under test
  const transform::ThumbnailSpec& spec = specs[data[0] % specs.size()];
  const Input original = data.subspan(1);
  if (spec.meta) {
    Result<std::string> json = transform::describe(original, spec, settings);
    if (json.ok()) require(json->starts_with('{'), "meta/ answers a JSON object");
    return;
  }
  Result<transform::Thumbnail> thumb = transform::render(original, spec, settings);
  if (thumb.ok()) {
    require(!thumb->bytes.empty(), "a thumbnail has bytes");
    require(thumb->size.width > 0 && thumb->size.height > 0 &&
                thumb->size.width <= settings.max_output_dimension &&
                thumb->size.height <= settings.max_output_dimension,
            "a thumbnail's size is within the output limit");
  } else {
    require(thumb.status().code() != Code::kOk, "a failure has a code");
  }
}

void s3_listing(Input data) {
  const std::string_view xml = as_text(data);
  std::optional<proxy::ListingPage> page = proxy::parse_listing_page(xml);
  if (!page) return;
  // Every object came from its own <Contents> element.
  std::size_t elements = 0;
  for (std::size_t at = xml.find("<Contents>"); at != std::string_view::npos;
       at = xml.find("<Contents>", at + 1)) {
    ++elements;
  }
  require(page->objects.size() <= elements, "one object per <Contents> element at most");
}

}  // namespace thimble::fuzz
