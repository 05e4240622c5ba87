#include "transform/heif_decode.h"

#include <libheif/heif.h>

#include <algorithm>
#include <memory>
#include <opencv2/imgproc.hpp>

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

}  // namespace

Result<cv::Mat> decode_heif(std::span<const std::uint8_t> data, const ImageInfo& info,
                            bool thumbnail, const DecodeBudget& budget) {
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
  Handle chosen = thumbnail ? thumbnail_of(primary.get(), info) : nullptr;
  heif_image_handle* handle = chosen ? chosen.get() : primary.get();
  const bool alpha = heif_image_handle_has_alpha_channel(handle) != 0;

  std::unique_ptr<heif_decoding_options, OptionsFree> options(heif_decoding_options_alloc());
  options->ignore_transformations = 1;
  options->convert_hdr_to_8bit = 1;
  if (budget.deadline.passed()) return deadline_passed();
  heif_image* decoded = nullptr;
  if (heif_decode_image(handle, &decoded, heif_colorspace_RGB,
                        alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB,
                        options.get())
          .code != heif_error_Ok) {
    return corrupt();
  }
  std::unique_ptr<heif_image, ImageFree> image(decoded);
  int stride = 0;
  const std::uint8_t* plane =
      heif_image_get_plane_readonly(image.get(), heif_channel_interleaved, &stride);
  const int width = heif_image_get_width(image.get(), heif_channel_interleaved);
  const int height = heif_image_get_height(image.get(), heif_channel_interleaved);
  if (!plane || width <= 0 || height <= 0 ||
      heif_image_get_bits_per_pixel_range(image.get(), heif_channel_interleaved) != 8) {
    return corrupt();
  }
  const cv::Mat rgb(height, width, alpha ? CV_8UC4 : CV_8UC3, const_cast<std::uint8_t*>(plane),
                    static_cast<std::size_t>(stride));
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, alpha ? cv::COLOR_RGBA2BGRA : cv::COLOR_RGB2BGR);
  if (budget.deadline.passed()) return deadline_passed();
  return bgr;
}

}  // namespace thimble::transform
