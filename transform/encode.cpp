#include "transform/encode.h"

#include <avif/avif.h>
#include <gif_lib.h>
#include <libimagequant.h>
#include <png.h>
#include <webp/encode.h>
#include <webp/mux.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "transform/filters.h"
#include "transform/jpeg_guard.h"
#include "transform/resize.h"

namespace thimble::transform {
namespace {

Status not_encoded() {
  return {Code::kInternal, "the thumbnail could not be encoded"};
}

// Composites BGRA onto an opaque background colour (JPEG has no alpha).
void flatten(cv::Mat& img, cv::Scalar background) {
  if (img.channels() != 4) return;
  cv::Mat out(img.size(), CV_8UC3);
  img.forEach<cv::Vec4b>([&](const cv::Vec4b& p, const int* pos) {
    const int a = p[3];
    cv::Vec3b& o = out.at<cv::Vec3b>(pos[0], pos[1]);
    for (int c = 0; c < 3; ++c) {
      o[c] = static_cast<std::uint8_t>(
          (p[c] * a + static_cast<int>(background[c]) * (255 - a) + 127) / 255);
    }
  });
  img = out;
}

// Lossy WebP and AVIF keep colour at half resolution (4:2:0): a visible edge pixel shares its
// chroma with its transparent neighbours, whose colour is black once unpremultiplied, so edges
// came out darker. Transparent pixels near visible ones take their alpha-weighted average colour
// instead (they stay invisible), so the shared chroma is the edge's own.
void bleed_into_transparent(cv::Mat& img) {
  if (img.channels() != 4) return;
  cv::Mat alpha;
  cv::extractChannel(img, alpha, 3);
  if (cv::countNonZero(alpha) == static_cast<int>(alpha.total())) return;
  cv::Mat weight;
  alpha.convertTo(weight, CV_32F, 1.0 / 255);
  std::vector<cv::Mat> planes;
  cv::split(img, planes);
  const cv::Size reach(5, 5);  // beyond a 2x2 chroma block and the encoder's filtering
  std::array<cv::Mat, 3> sums;
  for (std::size_t c = 0; c < 3; ++c) {
    planes[c].convertTo(sums[c], CV_32F);
    sums[c] = sums[c].mul(weight);
    cv::blur(sums[c], sums[c], reach);
  }
  cv::Mat weights;
  cv::blur(weight, weights, reach);
  img.forEach<cv::Vec4b>([&](cv::Vec4b& p, const int* pos) {
    const float w = weights.at<float>(pos[0], pos[1]);
    if (p[3] != 0 || w <= 0) return;
    for (std::size_t c = 0; c < 3; ++c) {
      p[c] = cv::saturate_cast<std::uint8_t>(sums[c].at<float>(pos[0], pos[1]) / w);
    }
  });
}

// --- chroma subsampling by content ---

// Small thumbnails only: the check costs a colour conversion and two small resizes.
constexpr int kChromaCheckPixels = 640 * 640;

// Whether `img` (BGR or BGRA) should keep full-resolution colour under `setting`
// (output.chroma_subsampling). `auto`: when more than 1% of its (visible) pixels would be off by
// more than 24 levels of Cb or Cr after 4:2:0 (chroma halved by area, brought back bilinearly).
// Measured on the corpus photographs: at most 0.02% of pixels (the saturated brushes of
// Picture_1A: 0.4%); coloured text on a coloured ground, a bar chart and a cartoon with lettering
// (the corpus' no_face.jpg): 2.5-3.3%.
bool keeps_full_chroma(const cv::Mat& img, const std::string& setting) {
  if (setting != "auto") return setting == "444";
  if (img.total() > static_cast<std::size_t>(kChromaCheckPixels) || img.channels() < 3 ||
      img.cols < 2 || img.rows < 2) {
    return false;
  }
  cv::Mat bgr = img, ycrcb, visible;
  if (img.channels() == 4) {
    cv::cvtColor(img, bgr, cv::COLOR_BGRA2BGR);
    cv::extractChannel(img, visible, 3);
    cv::threshold(visible, visible, 127, 255, cv::THRESH_BINARY);
  }
  cv::cvtColor(bgr, ycrcb, cv::COLOR_BGR2YCrCb);
  cv::Mat worst;
  for (int channel : {1, 2}) {
    cv::Mat chroma, half, back, error;
    cv::extractChannel(ycrcb, chroma, channel);
    cv::resize(chroma, half, cv::Size((chroma.cols + 1) / 2, (chroma.rows + 1) / 2), 0, 0,
               cv::INTER_AREA);
    cv::resize(half, back, chroma.size(), 0, 0, cv::INTER_LINEAR);
    cv::absdiff(chroma, back, error);
    worst = worst.empty() ? error : cv::max(worst, error);
  }
  cv::Mat smeared = worst > 24;
  if (!visible.empty()) smeared &= visible;
  const int counted = visible.empty() ? static_cast<int>(img.total()) : cv::countNonZero(visible);
  return counted > 0 && cv::countNonZero(smeared) * 100 > counted;
}

// --- JPEG (libjpeg-turbo) ---

// The scans of a progressive colour JPEG: all DC first (as the standard script), then luma's
// first AC coefficients at half precision, each chroma plane whole, luma's other AC coefficients
// at half precision, and one refinement of luma's last bit. libjpeg's standard script has ten
// scans, refining DC and every plane's AC bits more; the coefficients, and so the pixels, are the
// same either way. On the corpus these six give 0.3-1% fewer bytes and encode a fifth faster (the
// 1280 px landscape: 182.9 -> 181.7 KB, 15.7 -> 12.3 ms): each scan less is a pass less over
// the coefficients and one Huffman table fewer to optimise.
constexpr std::array<jpeg_scan_info, 6> kColourScans = {{
    {3, {0, 1, 2, 0}, 0, 0, 0, 0},
    {1, {0, 0, 0, 0}, 1, 5, 0, 1},
    {1, {2, 0, 0, 0}, 1, 63, 0, 0},
    {1, {1, 0, 0, 0}, 1, 63, 0, 0},
    {1, {0, 0, 0, 0}, 6, 63, 0, 1},
    {1, {0, 0, 0, 0}, 1, 63, 1, 0},
}};

// The libjpeg part, free of objects with destructors (longjmp skips them). `*out` is malloc'd by
// libjpeg, also when it fails; the caller frees it.
bool write_jpeg(const cv::Mat& img, int quality, bool progressive, bool full_chroma,
                unsigned char** out, unsigned long* size) {
  jpeg_compress_struct cinfo;
  JpegGuard guard;
  if (setjmp(guard.jump)) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  guard.create(cinfo);
  jpeg_mem_dest(&cinfo, out, size);
  cinfo.image_width = static_cast<JDIMENSION>(img.cols);
  cinfo.image_height = static_cast<JDIMENSION>(img.rows);
  cinfo.input_components = img.channels();
  cinfo.in_color_space = img.channels() == 1 ? JCS_GRAYSCALE : JCS_EXT_BGR;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  if (full_chroma && img.channels() == 3) {
    for (int c = 0; c < 3; ++c) {
      cinfo.comp_info[c].h_samp_factor = 1;
      cinfo.comp_info[c].v_samp_factor = 1;
    }
  }
  if (progressive) {
    jpeg_simple_progression(&cinfo);  // libjpeg then optimises the Huffman tables
    if (img.channels() == 3) {
      cinfo.scan_info = kColourScans.data();
      cinfo.num_scans = static_cast<int>(kColourScans.size());
    }
  }
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row =
        const_cast<JSAMPROW>(img.ptr<std::uint8_t>(static_cast<int>(cinfo.next_scanline)));
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

// libjpeg-turbo's standard tables at `quality`, progressive as configured, colour at 4:2:0 (two
// by two luma pixels per chroma sample, libjpeg's default) unless `full_chroma`.
Result<std::string> encode_jpeg(const cv::Mat& image, int quality, bool progressive,
                                bool full_chroma) {
  cv::Mat img = image;
  if (img.channels() == 4) cv::cvtColor(image, img, cv::COLOR_BGRA2BGR);
  unsigned char* bytes = nullptr;
  unsigned long size = 0;
  const bool written =
      write_jpeg(img, std::clamp(quality, 1, 100), progressive, full_chroma, &bytes, &size);
  std::string out;
  if (written && bytes) out.assign(reinterpret_cast<const char*>(bytes), size);
  std::free(bytes);
  if (!written) return not_encoded();
  return out;
}

// --- still WebP (libwebp) ---

// libwebp's defaults (method 4, alpha compressed losslessly with the fast filter choice) with
// the strongest in-loop deblocking filter. Its strength is one value in the frame header: a
// still's coded data is the same size, and what changes is how the decoder smooths block
// edges. At 100 instead of libwebp's 60, the corpus' `fit-in/300x200` WebPs score higher in
// every measure Thimble has: luma SSIM against the unencoded thumbnail at every quality from 50
// to 90 (the saving over libvips at equal SSIM rises from 7% to 9% at quality 80), and PSNR and
// SSIM against the source (+0.02 dB, +0.0004). libwebp's `autofilter` searches the strength
// per segment and scores a little higher still, but quadruples the encode (5.9 -> 27.6 ms at
// 300x200).
bool init_lossy_webp(WebPConfig& config, int quality) {
  if (!WebPConfigInit(&config)) return false;
  config.quality = static_cast<float>(std::clamp(quality, 0, 100));
  config.filter_strength = 100;
  return true;
}

// Lossy WebP at `quality` (see init_lossy_webp). With alpha, thread_level lets libwebp compress
// the alpha plane on a second thread while the first encodes the colour: the alpha plane of a
// large thumbnail costs as much as its colour (380 ms of 580 for the corpus' 1280 px alpha WebP),
// and a lone request no longer waits for both in turn. The bytes are those of a one-thread encode.
Result<std::string> encode_webp(const cv::Mat& image, int quality, bool sharp_yuv) {
  cv::Mat img = image;
  if (img.channels() == 1) cv::cvtColor(image, img, cv::COLOR_GRAY2BGR);
  WebPConfig config;
  if (!init_lossy_webp(config, quality)) return not_encoded();
  config.thread_level = img.channels() == 4 ? 1 : 0;
  // Lossy WebP is always 4:2:0; the sharp RGB to YUV conversion keeps colour edges crisper.
  config.use_sharp_yuv = sharp_yuv ? 1 : 0;
  WebPPicture picture;
  if (!WebPPictureInit(&picture)) return not_encoded();
  picture.width = img.cols;
  picture.height = img.rows;
  // Sharp YUV converts at encode time, from ARGB: imported as YUV, the picture would skip it.
  picture.use_argb = sharp_yuv ? 1 : 0;
  WebPMemoryWriter writer;
  WebPMemoryWriterInit(&writer);
  picture.writer = WebPMemoryWrite;
  picture.custom_ptr = &writer;
  const int stride = static_cast<int>(img.step);
  const bool imported = img.channels() == 4 ? WebPPictureImportBGRA(&picture, img.data, stride)
                                            : WebPPictureImportBGR(&picture, img.data, stride);
  const bool encoded = imported && WebPEncode(&config, &picture);
  WebPPictureFree(&picture);
  std::string out;
  if (encoded) out.assign(reinterpret_cast<const char*>(writer.mem), writer.size);
  WebPMemoryWriterClear(&writer);
  if (!encoded) return not_encoded();
  return out;
}

// --- PNG (libpng) ---

// libpng's adaptive filters then zlib's run-length strategy: on the corpus as small as level 6's
// full deflate search on photographs (765 vs 781 KB for the 1280 px landscape) and as small on
// flat artwork (2547 vs 2540 KB), at a fifth to a quarter of the time (43 vs 224 ms). Levels 7-9
// ask for the full search.
struct PngWrite {
  std::string bytes;
  bool failed = false;
};

void append_png(png_structp png, png_bytep data, png_size_t size) {
  auto* out = static_cast<PngWrite*>(png_get_io_ptr(png));
  try {
    out->bytes.append(reinterpret_cast<const char*>(data), size);
  } catch (const std::bad_alloc&) {
    out->failed = true;
  }
  if (out->failed) png_error(png, "out of memory");  // outside the handler: it longjmps
}
void flush_png(png_structp) {}
[[noreturn]] void png_failed(png_structp png, png_const_charp) {
  png_longjmp(png, 1);
}
void png_quiet(png_structp, png_const_charp) {}

// Writes the rows of an 8-bit grey, BGR or BGRA image; false when libpng failed. No destructors
// run between setjmp and the last libpng call.
bool write_png(const cv::Mat& img, int level, PngWrite& out) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_failed, png_quiet);
  if (png == nullptr) return false;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, &out, append_png, flush_png);
  const int colour = img.channels() == 4   ? PNG_COLOR_TYPE_RGB_ALPHA
                     : img.channels() == 3 ? PNG_COLOR_TYPE_RGB
                                           : PNG_COLOR_TYPE_GRAY;
  png_set_IHDR(png, info, static_cast<png_uint_32>(img.cols), static_cast<png_uint_32>(img.rows), 8,
               colour, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_ALL_FILTERS);
  png_set_compression_level(png, std::clamp(level, 0, 9));
  png_set_compression_strategy(png, level >= 7 ? Z_DEFAULT_STRATEGY : Z_RLE);
  png_write_info(png, info);
  if (img.channels() >= 3) png_set_bgr(png);
  for (int y = 0; y < img.rows; ++y) {
    png_write_row(png, const_cast<png_bytep>(img.ptr<std::uint8_t>(y)));
  }
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return true;
}

Result<std::string> encode_png(const cv::Mat& img, int level) {
  if (img.depth() != CV_8U || img.empty()) return not_encoded();
  PngWrite out;
  if (!write_png(img, level, out) || out.failed) return not_encoded();
  return std::move(out.bytes);
}

// --- AVIF (libavif + libaom) ---

struct AvifImageFree {
  void operator()(avifImage* i) const { avifImageDestroy(i); }
};
struct AvifEncoderFree {
  void operator()(avifEncoder* e) const { avifEncoderDestroy(e); }
};

// libaom's quantizer (0 best - 63 worst) for a 1-100 quality, as libheif maps it.
int avif_quantizer(int quality) {
  return std::clamp(((100 - quality) * 63 + 50) / 100, 0, 63);
}

Result<std::string> encode_avif(cv::Mat& img, int quality, int speed, bool full_chroma) {
  const bool alpha = img.channels() == 4;
  if (alpha) bleed_into_transparent(img);
  std::unique_ptr<avifImage, AvifImageFree> image(
      avifImageCreate(static_cast<std::uint32_t>(img.cols), static_cast<std::uint32_t>(img.rows), 8,
                      full_chroma ? AVIF_PIXEL_FORMAT_YUV444 : AVIF_PIXEL_FORMAT_YUV420));
  if (!image) return not_encoded();
  image->colorPrimaries = AVIF_COLOR_PRIMARIES_BT709;
  image->transferCharacteristics = AVIF_TRANSFER_CHARACTERISTICS_SRGB;
  image->matrixCoefficients = AVIF_MATRIX_COEFFICIENTS_BT601;
  image->yuvRange = AVIF_RANGE_FULL;
  avifRGBImage rgb;
  avifRGBImageSetDefaults(&rgb, image.get());
  rgb.format = alpha ? AVIF_RGB_FORMAT_BGRA : AVIF_RGB_FORMAT_BGR;
  rgb.depth = 8;
  rgb.pixels = img.data;
  rgb.rowBytes = static_cast<std::uint32_t>(img.step);
  if (avifImageRGBToYUV(image.get(), &rgb) != AVIF_RESULT_OK) return not_encoded();
  std::unique_ptr<avifEncoder, AvifEncoderFree> encoder(avifEncoderCreate());
  if (!encoder) return not_encoded();
  encoder->codecChoice = AVIF_CODEC_CHOICE_AOM;
  encoder->maxThreads = 1;  // parallelism comes from concurrent requests
  encoder->speed = speed;
  encoder->minQuantizer = encoder->maxQuantizer = avif_quantizer(quality);
  encoder->minQuantizerAlpha = encoder->maxQuantizerAlpha =
      avif_quantizer(std::min(100, quality + 10));
  avifRWData output = AVIF_DATA_EMPTY;
  const avifResult written = avifEncoderWrite(encoder.get(), image.get(), &output);
  std::string bytes;
  if (written == AVIF_RESULT_OK)
    bytes.assign(reinterpret_cast<const char*>(output.data), output.size);
  avifRWDataFree(&output);
  if (written != AVIF_RESULT_OK) return not_encoded();
  return bytes;
}

// --- GIF (giflib + libimagequant) ---

struct LiqAttrFree {
  void operator()(liq_attr* a) const { liq_attr_destroy(a); }
};
struct LiqImageFree {
  void operator()(liq_image* i) const { liq_image_destroy(i); }
};
struct LiqResultFree {
  void operator()(liq_result* r) const { liq_result_destroy(r); }
};

class GifWriter {
 public:
  GifWriter() {
    int error = 0;
    gif_ = EGifOpen(this, &GifWriter::write, &error);
  }
  ~GifWriter() {
    if (gif_) EGifCloseFile(gif_, nullptr);
  }

  bool start(int width, int height, std::optional<int> loop_count) {
    if (!gif_) return false;
    EGifSetGifVersion(gif_, true);
    if (EGifPutScreenDesc(gif_, width, height, 8, 0, nullptr) == GIF_ERROR) return false;
    if (!loop_count) return true;
    const std::uint8_t loops[3] = {1, static_cast<std::uint8_t>(*loop_count & 0xff),
                                   static_cast<std::uint8_t>(*loop_count >> 8 & 0xff)};
    return EGifPutExtensionLeader(gif_, APPLICATION_EXT_FUNC_CODE) != GIF_ERROR &&
           EGifPutExtensionBlock(gif_, 11, "NETSCAPE2.0") != GIF_ERROR &&
           EGifPutExtensionBlock(gif_, 3, loops) != GIF_ERROR &&
           EGifPutExtensionTrailer(gif_) != GIF_ERROR;
  }

  // One whole frame, quantised to its own palette. `clears` asks for the frame to be disposed
  // to transparent before the next (which then shows through nothing of this one).
  bool add(const cv::Mat& bgra, int duration_ms, bool clears, int speed) {
    cv::Mat rgba;
    cv::cvtColor(bgra, rgba, bgra.channels() == 4 ? cv::COLOR_BGRA2RGBA : cv::COLOR_BGR2RGBA);
    bool transparent = false;
    for (int y = 0; y < rgba.rows; ++y) {
      auto* row = rgba.ptr<cv::Vec4b>(y);
      for (int x = 0; x < rgba.cols; ++x) {
        if (row[x][3] < 128) {
          row[x] = cv::Vec4b(0, 0, 0, 0);  // GIF transparency is all or nothing
        } else {
          row[x][3] = 255;
        }
      }
    }
    std::unique_ptr<liq_attr, LiqAttrFree> attr(liq_attr_create());
    if (!attr) return false;
    liq_set_speed(attr.get(), speed);
    std::unique_ptr<liq_image, LiqImageFree> image(
        liq_image_create_rgba(attr.get(), rgba.data, rgba.cols, rgba.rows, 0));
    if (!image) return false;
    liq_result* quantised = nullptr;
    if (liq_image_quantize(image.get(), attr.get(), &quantised) != LIQ_OK) return false;
    std::unique_ptr<liq_result, LiqResultFree> result(quantised);
    liq_set_dithering_level(result.get(), 1.0f);
    std::vector<std::uint8_t> indexes(rgba.total());
    if (liq_write_remapped_image(result.get(), image.get(), indexes.data(), indexes.size()) !=
        LIQ_OK) {
      return false;
    }
    const liq_palette* palette = liq_get_palette(result.get());
    int colours = 2;  // a GIF colour table has a power-of-two size
    while (colours < static_cast<int>(palette->count)) colours *= 2;
    std::unique_ptr<ColorMapObject, void (*)(ColorMapObject*)> map(
        GifMakeMapObject(colours, nullptr), GifFreeMapObject);
    if (!map) return false;
    int transparent_index = NO_TRANSPARENT_COLOR;
    for (unsigned i = 0; i < palette->count; ++i) {
      map->Colors[i] = {palette->entries[i].r, palette->entries[i].g, palette->entries[i].b};
      if (palette->entries[i].a == 0) {
        transparent_index = static_cast<int>(i);
        transparent = true;
      }
    }
    GraphicsControlBlock control{};
    control.DisposalMode = clears ? DISPOSE_BACKGROUND : DISPOSE_DO_NOT;
    control.DelayTime = (duration_ms + 5) / 10;
    control.TransparentColor = transparent ? transparent_index : NO_TRANSPARENT_COLOR;
    GifByteType extension[4];
    EGifGCBToExtension(&control, extension);
    if (EGifPutExtension(gif_, GRAPHICS_EXT_FUNC_CODE, 4, extension) == GIF_ERROR ||
        EGifPutImageDesc(gif_, 0, 0, rgba.cols, rgba.rows, false, map.get()) == GIF_ERROR) {
      return false;
    }
    for (int y = 0; y < rgba.rows; ++y) {
      if (EGifPutLine(gif_, indexes.data() + static_cast<std::size_t>(y) * rgba.cols, rgba.cols) ==
          GIF_ERROR) {
        return false;
      }
    }
    return true;
  }

  std::optional<std::string> finish() {
    const int closed = EGifCloseFile(gif_, nullptr);
    gif_ = nullptr;
    if (closed == GIF_ERROR) return std::nullopt;
    return std::move(out_);
  }

 private:
  static int write(GifFileType* gif, const GifByteType* bytes, int n) {
    static_cast<GifWriter*>(gif->UserData)
        ->out_.append(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(n));
    return n;
  }

  GifFileType* gif_ = nullptr;
  std::string out_;
};

// Whether a frame has pixels the GIF writer makes transparent (alpha under half).
bool has_transparency(const cv::Mat& img) {
  return lowest_alpha(img) < 128;
}

// libimagequant's speed: 4 (its default) for a still, faster for many frames.
constexpr int kGifStillSpeed = 4;
constexpr int kGifFrameSpeed = 8;

// An animated GIF written as frames arrive. Each frame waits for the next one: a frame whose
// successor has transparent pixels is cleared before it, so it does not show through.
class GifAnimationWriter final : public AnimationWriter {
 public:
  Status start(cv::Size size, int loop_count) {
    return writer_.start(size.width, size.height, loop_count) ? Status::Ok() : not_encoded();
  }
  Status add(cv::Mat& frame, int duration_ms) override {
    if (!pending_.empty() &&
        !writer_.add(pending_, pending_duration_, has_transparency(frame), kGifFrameSpeed)) {
      return not_encoded();
    }
    frame.copyTo(pending_);
    pending_duration_ = duration_ms;
    return Status::Ok();
  }
  Result<std::string> finish() override {
    if (pending_.empty() || !writer_.add(pending_, pending_duration_, false, kGifFrameSpeed)) {
      return not_encoded();
    }
    std::optional<std::string> bytes = writer_.finish();
    if (!bytes) return not_encoded();
    return std::move(*bytes);
  }

 private:
  GifWriter writer_;
  cv::Mat pending_;
  int pending_duration_ = 0;
};

Result<std::string> encode_still_gif(const cv::Mat& image) {
  GifWriter writer;
  if (!writer.start(image.cols, image.rows, std::nullopt) ||
      !writer.add(image, 0, false, kGifStillSpeed)) {
    return not_encoded();
  }
  std::optional<std::string> bytes = writer.finish();
  if (!bytes) return not_encoded();
  return std::move(*bytes);
}

// --- animated WebP (libwebpmux) ---

class WebpAnimationWriter final : public AnimationWriter {
 public:
  ~WebpAnimationWriter() override {
    if (encoder_) WebPAnimEncoderDelete(encoder_);
  }
  Status start(cv::Size size, int loop_count, int quality) {
    WebPAnimEncoderOptions options;
    if (!WebPAnimEncoderOptionsInit(&options) || !init_lossy_webp(config_, quality)) {
      return not_encoded();
    }
    options.anim_params.loop_count = loop_count;
    encoder_ = WebPAnimEncoderNew(size.width, size.height, &options);
    return encoder_ ? Status::Ok() : not_encoded();
  }
  Status add(cv::Mat& frame, int duration_ms) override {
    bleed_into_transparent(frame);
    WebPPicture picture;
    if (!WebPPictureInit(&picture)) return not_encoded();
    picture.width = frame.cols;
    picture.height = frame.rows;
    picture.use_argb = 1;
    const bool imported =
        frame.channels() == 4
            ? WebPPictureImportBGRA(&picture, frame.data, static_cast<int>(frame.step))
            : WebPPictureImportBGR(&picture, frame.data, static_cast<int>(frame.step));
    const bool added = imported && WebPAnimEncoderAdd(encoder_, &picture, timestamp_, &config_);
    WebPPictureFree(&picture);
    if (!added) return not_encoded();
    timestamp_ += duration_ms;
    return Status::Ok();
  }
  Result<std::string> finish() override {
    WebPData assembled;
    WebPDataInit(&assembled);
    if (!WebPAnimEncoderAdd(encoder_, nullptr, timestamp_, nullptr) ||
        !WebPAnimEncoderAssemble(encoder_, &assembled)) {
      WebPDataClear(&assembled);
      return not_encoded();
    }
    std::string bytes(reinterpret_cast<const char*>(assembled.bytes), assembled.size);
    WebPDataClear(&assembled);
    return bytes;
  }

 private:
  WebPAnimEncoder* encoder_ = nullptr;
  WebPConfig config_{};
  int timestamp_ = 0;
};

}  // namespace

RenderSettings with_chroma_decided(const cv::Mat& image, ImageFormat format,
                                   const RenderSettings& settings) {
  RenderSettings decided = settings;
  const bool subsamples =
      format == ImageFormat::kJpeg || format == ImageFormat::kWebp || format == ImageFormat::kAvif;
  if (subsamples && decided.chroma_subsampling == "auto") {
    decided.chroma_subsampling = keeps_full_chroma(image, "auto") ? "444" : "420";
  }
  return decided;
}

Result<std::string> encode_image(cv::Mat& img, ImageFormat format, const ThumbnailSpec& spec,
                                 const RenderSettings& s, std::optional<int> quality) {
  switch (format) {
    case ImageFormat::kJpeg: {
      const Colour c = flatten_colour(spec.filters);
      flatten(img, cv::Scalar(c.b, c.g, c.r));
      return encode_jpeg(img, std::max(1, quality.value_or(spec.quality.value_or(s.jpeg_quality))),
                         s.jpeg_progressive, keeps_full_chroma(img, s.chroma_subsampling));
    }
    case ImageFormat::kWebp: {
      const bool sharp = keeps_full_chroma(img, s.chroma_subsampling);
      bleed_into_transparent(img);
      return encode_webp(img, std::max(1, quality.value_or(spec.quality.value_or(s.webp_quality))),
                         sharp);
    }
    case ImageFormat::kPng: return encode_png(img, s.png_compression);
    case ImageFormat::kAvif:
      return encode_avif(img, std::max(1, quality.value_or(spec.quality.value_or(s.avif_quality))),
                         s.avif_speed, keeps_full_chroma(img, s.chroma_subsampling));
    case ImageFormat::kGif: return encode_still_gif(img);
    case ImageFormat::kHeic: break;
  }
  return not_encoded();
}

Result<std::unique_ptr<AnimationWriter>> animation_writer(ImageFormat format, cv::Size size,
                                                          int loop_count, const ThumbnailSpec& spec,
                                                          const RenderSettings& s,
                                                          std::optional<int> quality) {
  if (format == ImageFormat::kGif) {
    auto writer = std::make_unique<GifAnimationWriter>();
    if (Status started = writer->start(size, loop_count); !started.ok()) return started;
    return std::unique_ptr<AnimationWriter>(std::move(writer));
  }
  if (format == ImageFormat::kWebp) {
    auto writer = std::make_unique<WebpAnimationWriter>();
    if (Status started = writer->start(
            size, loop_count, std::max(1, quality.value_or(spec.quality.value_or(s.webp_quality))));
        !started.ok()) {
      return started;
    }
    return std::unique_ptr<AnimationWriter>(std::move(writer));
  }
  return not_encoded();
}

Result<std::string> encode_animation(Frames& frames, ImageFormat format, const ThumbnailSpec& spec,
                                     const RenderSettings& s, std::optional<int> quality) {
  if (frames.images.empty() || frames.images.size() != frames.durations_ms.size()) {
    return not_encoded();
  }
  Result<std::unique_ptr<AnimationWriter>> writer =
      animation_writer(format, frames.images.front().size(), frames.loop_count, spec, s, quality);
  if (!writer.ok()) return writer.status();
  for (std::size_t i = 0; i < frames.images.size(); ++i) {
    if (Status added = (*writer)->add(frames.images[i], frames.durations_ms[i]); !added.ok()) {
      return added;
    }
  }
  return (*writer)->finish();
}

}  // namespace thimble::transform
