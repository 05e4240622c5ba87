#include "transform/png_decode.h"

#include <libdeflate.h>
#include <png.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <vector>

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

// --- the whole-image path: libdeflate and Thimble's own unfiltering ---

std::uint32_t big_endian(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

// Undoes PNG's Average filter (x + floor((left + up) / 2)). Each byte needs the one kBpp before
// it, just made: the left pixel is kept in registers, one chain per channel, rather than read back
// from memory (a store-to-load wait per byte); `x` and `up` are different rows.
template <int kBpp>
void unfilter_average(std::uint8_t* __restrict x, const std::uint8_t* __restrict up,
                      std::size_t bytes) {
  std::uint8_t l0 = 0, l1 = 0, l2 = 0, l3 = 0;
  const auto next = [](std::uint8_t filtered, std::uint8_t left, std::uint8_t above) {
    return static_cast<std::uint8_t>(filtered + ((left + above) >> 1));
  };
  for (std::size_t i = 0; i < bytes; i += kBpp) {
    l0 = next(x[i], l0, up[i]);
    l1 = next(x[i + 1], l1, up[i + 1]);
    l2 = next(x[i + 2], l2, up[i + 2]);
    x[i] = l0;
    x[i + 1] = l1;
    x[i + 2] = l2;
    if constexpr (kBpp == 4) {
      l3 = next(x[i + 3], l3, up[i + 3]);
      x[i + 3] = l3;
    }
  }
}

// Undoes PNG's Paeth filter: of left (a), up (b) and up-left (c), the one nearest a + b - c,
// ties to a, then b; branch-free, with a and c kept in registers as for Average.
template <int kBpp>
void unfilter_paeth(std::uint8_t* __restrict x, const std::uint8_t* __restrict up,
                    std::size_t bytes) {
  int a[kBpp] = {}, c[kBpp] = {};
  for (std::size_t i = 0; i < bytes; i += kBpp) {
    for (int k = 0; k < kBpp; ++k) {
      const int b = up[i + k];
      const int pa = std::abs(b - c[k]), pb = std::abs(a[k] - c[k]);
      const int pc = std::abs(b - c[k] + a[k] - c[k]);
      const int b_or_c = pb <= pc ? b : c[k];
      const int predictor = pa <= pb && pa <= pc ? a[k] : b_or_c;
      a[k] = (x[i + k] + predictor) & 0xFF;
      x[i + k] = static_cast<std::uint8_t>(a[k]);
      c[k] = b;
    }
  }
}

// Undoes one row's filter in place: `row` is its filter byte and `bytes` bytes of pixels, `up`
// the row above, already unfiltered (zeros for the first). False for a filter PNG does not have.
template <int kBpp>
bool unfilter_row(std::uint8_t* row, const std::uint8_t* up, std::size_t bytes) {
  std::uint8_t* x = row + 1;
  switch (row[0]) {
    case 0: return true;
    case 1:
      for (std::size_t i = kBpp; i < bytes; ++i) {
        x[i] = static_cast<std::uint8_t>(x[i] + x[i - kBpp]);
      }
      return true;
    case 2:
      for (std::size_t i = 0; i < bytes; ++i) x[i] = static_cast<std::uint8_t>(x[i] + up[i]);
      return true;
    case 3: unfilter_average<kBpp>(x, up, bytes); return true;
    case 4: unfilter_paeth<kBpp>(x, up, bytes); return true;
    default: return false;
  }
}

// Unfilters the rows (each a filter byte and kBpp * width bytes, RGB or RGBA) into `out` (BGR or
// BGRA), a band of rows at a time while they are still in cache.
template <int kBpp>
bool unfilter_into(std::uint8_t* rows, std::size_t stride, cv::Mat& out) {
  constexpr int kBand = 16;
  const std::size_t bytes = stride - 1;
  const std::vector<std::uint8_t> none(bytes, 0);
  const std::uint8_t* up = none.data();
  for (int y = 0; y < out.rows; y += kBand) {
    const int band = std::min(kBand, out.rows - y);
    for (int i = 0; i < band; ++i) {
      std::uint8_t* row = rows + static_cast<std::size_t>(y + i) * stride;
      if (!unfilter_row<kBpp>(row, up, bytes)) return false;
      up = row + 1;
    }
    const cv::Mat pixels(band, out.cols, CV_8UC(kBpp),
                         rows + static_cast<std::size_t>(y) * stride + 1, stride);
    cv::Mat target = out.rowRange(y, y + band);
    cv::cvtColor(pixels, target, kBpp == 4 ? cv::COLOR_RGBA2BGRA : cv::COLOR_RGB2BGR);
  }
  return true;
}

// The common PNG (8-bit RGB or RGBA, not interlaced, no tRNS) decoded whole: its compressed data
// inflated at once by libdeflate into the rows' exact size, then unfiltered. A third of the time
// of libpng's row-by-row path, for one more image-sized buffer. nullopt for any other PNG, and
// for anything unusual (a bad CRC, data that does not inflate to exactly the rows, an unknown
// filter): libpng's path then decodes it, or says what is wrong, as always.
std::optional<cv::Mat> decode_whole(std::span<const std::uint8_t> data, const ImageInfo& info,
                                    const DecodeBudget& budget) {
  const std::uint8_t* p = data.data();
  const std::size_t size = data.size();
  if (size < 33 || std::memcmp(p + 12, "IHDR", 4) != 0 || big_endian(p + 8) != 13) {
    return std::nullopt;
  }
  const std::uint8_t depth = p[24], colour = p[25], interlace = p[28];
  if (big_endian(p + 16) != static_cast<std::uint32_t>(info.width) ||
      big_endian(p + 20) != static_cast<std::uint32_t>(info.height) || depth != 8 ||
      (colour != 2 && colour != 6) || p[26] != 0 || p[27] != 0 || interlace != 0) {
    return std::nullopt;
  }
  const int bpp = colour == 6 ? 4 : 3;
  const std::size_t stride =
      1 + static_cast<std::size_t>(info.width) * static_cast<std::size_t>(bpp);
  const std::size_t raw_size = stride * static_cast<std::size_t>(info.height);
  if (budget.max_memory_bytes != 0 && raw_size > budget.max_memory_bytes) return std::nullopt;
  // The IDAT chunks, in one piece; each critical chunk's CRC checked, as libpng does.
  std::vector<std::uint8_t> compressed;
  compressed.reserve(size);  // never grown (and copied) chunk by chunk
  bool in_data = false;
  for (std::size_t at = 8; at + 12 <= size;) {
    const std::size_t length = big_endian(p + at);
    if (length > size - at - 12) return std::nullopt;
    const std::uint8_t* type = p + at + 4;
    const bool critical = (type[0] & 0x20) == 0;
    if (critical && libdeflate_crc32(0, type, length + 4) != big_endian(p + at + 8 + length)) {
      return std::nullopt;
    }
    if (std::memcmp(type, "IDAT", 4) == 0) {
      in_data = true;
      compressed.insert(compressed.end(), p + at + 8, p + at + 8 + length);
    } else if (in_data || std::memcmp(type, "IEND", 4) == 0) {
      break;
    } else if (std::memcmp(type, "tRNS", 4) == 0) {
      return std::nullopt;  // a transparent colour: libpng turns it into alpha
    }
    at += 12 + length;
  }
  if (compressed.empty()) return std::nullopt;
  // Never more than the rows: a stream that inflates further is not taken here.
  // Left uninitialised: libdeflate writes every byte or fails.
  const std::unique_ptr<std::uint8_t[]> rows(new std::uint8_t[raw_size]);
  libdeflate_decompressor* inflater = libdeflate_alloc_decompressor();
  if (inflater == nullptr) return std::nullopt;
  const libdeflate_result inflated = libdeflate_zlib_decompress(
      inflater, compressed.data(), compressed.size(), rows.get(), raw_size, nullptr);
  libdeflate_free_decompressor(inflater);
  if (inflated != LIBDEFLATE_SUCCESS || budget.deadline.passed()) return std::nullopt;
  cv::Mat out(info.height, info.width, CV_8UC(bpp));
  if (!(bpp == 4 ? unfilter_into<4>(rows.get(), stride, out)
                 : unfilter_into<3>(rows.get(), stride, out))) {
    return std::nullopt;
  }
  return out;
}

}  // namespace

Result<cv::Mat> decode_png(std::span<const std::uint8_t> data, const ImageInfo& info,
                           const DecodeBudget& budget) {
  if (std::optional<cv::Mat> whole = decode_whole(data, info, budget)) return std::move(*whole);
  if (budget.deadline.passed()) return deadline_passed();
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
