#include "transform/png_decode.h"

#include <png.h>

#include <algorithm>

namespace thimble::transform {
namespace {

enum class Outcome { kOk, kCorrupt, kMismatch, kDeadline };

// Compressed bytes handed to libpng at a time: what it may inflate past the last row before
// Thimble stops feeding it (zeros inflate about 1000:1, so at most a few megabytes of rows).
constexpr std::size_t kFeed = 4096;

[[noreturn]] void fail(png_structp png, png_const_charp) {
  png_longjmp(png, 1);
}
void ignore(png_structp, png_const_charp) {}

// Chunks read as unknown and dropped: never inflated, never kept.
constexpr png_byte kSkipped[] =
    "iCCP\0zTXt\0iTXt\0tEXt\0eXIf\0sPLT\0hIST\0pCAL\0sCAL\0sBIT\0"
    "tIME\0pHYs\0oFFs\0sRGB\0cHRM\0gAMA\0bKGD";

// What libpng's progressive reader fills, through its callbacks. Owned by the caller: the
// libpng part below jumps out with longjmp, which skips destructors.
struct Progress {
  int width = 0, height = 0;
  cv::Mat* out = nullptr;
  int last_pass = 0;
  bool mismatch = false;
  bool done = false;  // the last row of the last pass is in
};

void on_info(png_structp png, png_infop info) {
  auto* p = static_cast<Progress*>(png_get_progressive_ptr(png));
  if (static_cast<int>(png_get_image_width(png, info)) != p->width ||
      static_cast<int>(png_get_image_height(png, info)) != p->height) {
    p->mismatch = true;
    png_error(png, "IHDR differs from the sniffed one");
  }
  const int colour = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  if (colour == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (colour == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (colour == PNG_COLOR_TYPE_GRAY || colour == PNG_COLOR_TYPE_GRAY_ALPHA) {
    png_set_gray_to_rgb(png);
  }
  if (depth == 16) png_set_swap(png);  // host order for a CV_16U Mat
  png_set_bgr(png);
  p->last_pass = png_set_interlace_handling(png) - 1;
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  if (channels != 3 && channels != 4) png_error(png, "unsupported channel layout");
  *p->out = cv::Mat(p->height, p->width, CV_MAKETYPE(depth == 16 ? CV_16U : CV_8U, channels),
                    cv::Scalar::all(0));
}

void on_row(png_structp png, png_bytep row, png_uint_32 number, int pass) {
  auto* p = static_cast<Progress*>(png_get_progressive_ptr(png));
  if (number >= static_cast<png_uint_32>(p->height) || p->out->empty()) return;
  if (row != nullptr) png_progressive_combine_row(png, p->out->ptr(static_cast<int>(number)), row);
  if (pass == p->last_pass && number + 1 == static_cast<png_uint_32>(p->height)) p->done = true;
}

void on_end(png_structp png, png_infop) {
  static_cast<Progress*>(png_get_progressive_ptr(png))->done = true;
}

Outcome run(const std::uint8_t* data, std::size_t size, const Deadline& deadline,
            Progress& progress) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, fail, ignore);
  if (png == nullptr) return Outcome::kCorrupt;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return progress.mismatch ? Outcome::kMismatch : Outcome::kCorrupt;
  }
  png_set_benign_errors(png, 1);
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, kSkipped,
                              static_cast<int>(sizeof kSkipped / 5));
  png_set_user_limits(png, static_cast<png_uint_32>(progress.width),
                      static_cast<png_uint_32>(progress.height));
  png_set_chunk_malloc_max(png, 8u << 20);
  png_set_progressive_read_fn(png, &progress, on_info, on_row, on_end);
  // Fed a little at a time, and never again once the last row is in.
  Outcome outcome = Outcome::kCorrupt;
  for (std::size_t at = 0; at < size && !progress.done;) {
    if (deadline.passed()) {
      outcome = Outcome::kDeadline;
      break;
    }
    const std::size_t n = std::min(kFeed, size - at);
    png_process_data(png, info, const_cast<png_bytep>(data + at), n);
    at += n;
  }
  if (progress.done) outcome = Outcome::kOk;
  png_destroy_read_struct(&png, &info, nullptr);
  return outcome;
}

}  // namespace

Result<cv::Mat> decode_png(std::span<const std::uint8_t> data, const ImageInfo& info,
                           const DecodeBudget& budget) {
  cv::Mat out;
  Progress progress;
  progress.width = info.width;
  progress.height = info.height;
  progress.out = &out;
  switch (run(data.data(), data.size(), budget.deadline, progress)) {
    case Outcome::kOk: break;
    case Outcome::kMismatch:
      return Status(Code::kUnsupportedMedia, "the PNG's headers disagree about its size");
    case Outcome::kDeadline: return deadline_passed();
    case Outcome::kCorrupt: return Status(Code::kUnsupportedMedia, "the image data is corrupt");
  }
  if (out.depth() == CV_16U) out.convertTo(out, CV_8U, 1.0 / 257.0);
  return out;
}

}  // namespace thimble::transform
