#include "transform/heif_decode.h"

#include <libheif/heif.h>

#include <algorithm>
#include <array>
#include <memory>
#include <opencv2/imgproc.hpp>

#include "transform/plan.h"
#include "transform/resize.h"

namespace thimble::transform {
namespace {

struct ContextFree {
  void operator()(heif_context* c) const { heif_context_free(c); }
};
struct HandleFree {
  void operator()(heif_image_handle* h) const { heif_image_handle_release(h); }
};
struct ImageFree {
  void operator()(heif_image* i) const { heif_image_release(i); }
};
struct OptionsFree {
  void operator()(heif_decoding_options* o) const { heif_decoding_options_free(o); }
};
using Handle = std::unique_ptr<heif_image_handle, HandleFree>;

Status corrupt() {
  return {Code::kUnsupportedMedia, "the image data is corrupt"};
}

// The thumbnail item of `primary` with the size the header reported.
Handle thumbnail_of(heif_image_handle* primary, const ImageInfo& info) {
  const int count = heif_image_handle_get_number_of_thumbnails(primary);
  if (count <= 0 || count > 16) return nullptr;
  heif_item_id ids[16];
  heif_image_handle_get_list_of_thumbnail_IDs(primary, ids, count);
  for (int i = 0; i < count; ++i) {
    heif_image_handle* thumb = nullptr;
    if (heif_image_handle_get_thumbnail(primary, ids[i], &thumb).code != heif_error_Ok) continue;
    Handle held(thumb);
    if (heif_image_handle_get_ispe_width(thumb) == info.thumbnail_width &&
        heif_image_handle_get_ispe_height(thumb) == info.thumbnail_height) {
      return held;
    }
  }
  return nullptr;
}

// One plane of `image` as 8-bit (10- and 12-bit values scaled down), reduced by area to `size`.
cv::Mat plane(const heif_image* image, heif_channel channel, cv::Size size) {
  int stride = 0;
  const std::uint8_t* data = heif_image_get_plane_readonly(image, channel, &stride);
  const int width = heif_image_get_width(image, channel);
  const int height = heif_image_get_height(image, channel);
  const int bits = heif_image_get_bits_per_pixel_range(image, channel);
  if (!data || width <= 0 || height <= 0 || bits < 8 || bits > 16) return {};
  cv::Mat values(height, width, bits == 8 ? CV_8UC1 : CV_16UC1, const_cast<std::uint8_t*>(data),
                 static_cast<std::size_t>(stride));
  cv::Mat resized;
  if (values.size() == size) {
    resized = values;
  } else {
    area_resize(values, resized, size);
  }
  if (bits == 8) return resized;
  cv::Mat narrow;
  resized.convertTo(narrow, CV_8U, 255.0 / ((1 << bits) - 1));
  return narrow;
}

// libheif's planar RGB, each plane reduced by area to `size`, as BGR. libheif 1.15 makes planar
// RGB faster than interleaved RGB (a 12 MP AVIF decodes in 104 ms instead of 135 here), and its
// YCbCr output is slower than either. Empty when a plane is missing.
cv::Mat planes_to_bgr(const heif_image* image, cv::Size size) {
  const std::array<cv::Mat, 3> bgr_planes = {plane(image, heif_channel_B, size),
                                             plane(image, heif_channel_G, size),
                                             plane(image, heif_channel_R, size)};
  if (bgr_planes[0].empty() || bgr_planes[1].empty() || bgr_planes[2].empty()) return {};
  cv::Mat bgr;
  cv::merge(bgr_planes.data(), 3, bgr);
  return bgr;
}

}  // namespace

Result<cv::Mat> decode_heif(std::span<const std::uint8_t> data, const ImageInfo& info, int shrink,
                            const DecodeBudget& budget) {
  std::unique_ptr<heif_context, ContextFree> context(heif_context_alloc());
  if (!context) return Status(Code::kInternal, "out of memory");
  // No image in the file larger than the primary one or its grid's tiles. libheif checks the
  // codec's picture before its conformance crop: HEVC codes whole blocks of up to 64 pixels (a
  // 1918 px wide image is coded 1920 wide), and libheif refuses a side equal to the limit.
  constexpr int kCodedBlock = 64;
  heif_context_set_maximum_image_size_limit(
      context.get(),
      std::max({info.width, info.height, info.coded_width, info.coded_height}) + kCodedBlock);
  heif_context_set_max_decoding_threads(context.get(), 0);
  if (heif_context_read_from_memory_without_copy(context.get(), data.data(), data.size(), nullptr)
          .code != heif_error_Ok) {
    return corrupt();
  }
  heif_image_handle* primary_handle = nullptr;
  if (heif_context_get_primary_image_handle(context.get(), &primary_handle).code != heif_error_Ok) {
    return corrupt();
  }
  Handle primary(primary_handle);
  // The limits were checked on the size Thimble read: libheif must agree before any decode.
  if (heif_image_handle_get_ispe_width(primary.get()) != info.width ||
      heif_image_handle_get_ispe_height(primary.get()) != info.height) {
    return Status(Code::kUnsupportedMedia, "the HEIF headers disagree about the image");
  }
  Handle chosen =
      decodes_heif_thumbnail(info, shrink) ? thumbnail_of(primary.get(), info) : nullptr;
  heif_image_handle* handle = chosen ? chosen.get() : primary.get();
  const bool alpha = heif_image_handle_has_alpha_channel(handle) != 0;

  std::unique_ptr<heif_decoding_options, OptionsFree> options(heif_decoding_options_alloc());
  options->ignore_transformations = 1;
  options->convert_hdr_to_8bit = 1;
  if (budget.deadline.passed()) return deadline_passed();
  // Without alpha, planar RGB reduced plane by plane (planes_to_bgr); with alpha, interleaved
  // RGBA at full size: colour must be weighed by alpha before it is averaged, which the resize
  // step does.
  heif_image* decoded = nullptr;
  if (heif_decode_image(handle, &decoded, heif_colorspace_RGB,
                        alpha ? heif_chroma_interleaved_RGBA : heif_chroma_444, options.get())
          .code != heif_error_Ok) {
    return corrupt();
  }
  std::unique_ptr<heif_image, ImageFree> image(decoded);
  const heif_channel first = alpha ? heif_channel_interleaved : heif_channel_R;
  const int width = heif_image_get_width(image.get(), first);
  const int height = heif_image_get_height(image.get(), first);
  if (width != (chosen ? info.thumbnail_width : info.width) ||
      height != (chosen ? info.thumbnail_height : info.height)) {
    return corrupt();
  }
  cv::Mat bgr;
  if (!alpha) {
    // A thumbnail item is taken as it is; the image itself is reduced to 1/shrink.
    const int by = chosen ? 1 : std::max(1, shrink);
    bgr = planes_to_bgr(image.get(), {(width + by - 1) / by, (height + by - 1) / by});
    if (bgr.empty()) return corrupt();
  } else {
    int stride = 0;
    const std::uint8_t* pixels =
        heif_image_get_plane_readonly(image.get(), heif_channel_interleaved, &stride);
    if (!pixels ||
        heif_image_get_bits_per_pixel_range(image.get(), heif_channel_interleaved) != 8) {
      return corrupt();
    }
    const cv::Mat rgba(height, width, CV_8UC4, const_cast<std::uint8_t*>(pixels),
                       static_cast<std::size_t>(stride));
    cv::cvtColor(rgba, bgr, cv::COLOR_RGBA2BGRA);
  }
  if (budget.deadline.passed()) return deadline_passed();
  return bgr;
}

}  // namespace thimble::transform
