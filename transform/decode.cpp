#include "transform/decode.h"

#include <webp/decode.h>

#include <algorithm>
#include <opencv2/imgproc.hpp>

#include "transform/animated.h"
#include "transform/heif_decode.h"
#include "transform/jpeg_dc.h"
#include "transform/png_decode.h"

namespace thimble::transform {

// Maps a rectangle given in oriented (displayed) coordinates back to the stored image.
// `shown` is the oriented image size.
Rect to_stored(Rect r, Size shown, int orientation) {
  const int W = shown.width, H = shown.height;
  switch (orientation) {
    case 2: return {W - (r.x + r.width), r.y, r.width, r.height};
    case 3: return {W - (r.x + r.width), H - (r.y + r.height), r.width, r.height};
    case 4: return {r.x, H - (r.y + r.height), r.width, r.height};
    case 5: return {r.y, r.x, r.height, r.width};
    case 6: return {r.y, W - (r.x + r.width), r.height, r.width};
    case 7: return {H - (r.y + r.height), W - (r.x + r.width), r.height, r.width};
    case 8: return {H - (r.y + r.height), r.x, r.height, r.width};
    default: return r;
  }
}

// Turns a stored image into the displayed one for an EXIF orientation.
void apply_orientation(cv::Mat& img, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2: cv::flip(img, out, 1); break;
    case 3: cv::rotate(img, out, cv::ROTATE_180); break;
    case 4: cv::flip(img, out, 0); break;
    case 5: cv::transpose(img, out); break;
    case 6: cv::rotate(img, out, cv::ROTATE_90_CLOCKWISE); break;
    case 7:
      cv::transpose(img, out);
      cv::flip(out, out, -1);
      break;
    case 8: cv::rotate(img, out, cv::ROTATE_90_COUNTERCLOCKWISE); break;
    default: return;
  }
  img = out;
}

namespace {

// WebP straight through libwebp. cv::imdecode picks a decoder by signature, and a RIFF/WEBP file
// that libwebp's own check refuses falls through OpenCV's list to a decoder that never should
// see it: GDCM (DICOM) claims any file with "DICM" at byte 128 and GDAL any with "DTED" at byte
// 140, and a hostile file steered GDCM into a multi-gigabyte allocation. JPEG and PNG cannot fall
// through: sniff() demands the very signature OpenCV's JPEG and PNG decoders claim.
// A still WebP with `shrink` above 1 is decoded straight to 1/shrink of its size by libwebp's
// area-averaging rescaler: no full-size image is made, and the resize that follows is small. With
// alpha too: the colour of transparent pixels stays out of the visible edge (none in a lossless
// file, at most 11 levels in a lossy one written with `cwebp -exact`; encoders clear that colour
// by default), and the corpus' alpha WebP comes out 0.2 dB closer to its reference than with the
// full decode and premultiplied resize.
Result<cv::Mat> decode_webp(std::span<const std::uint8_t> data, const ImageInfo& info, int shrink) {
  WebPDecoderConfig config;
  if (!WebPInitDecoderConfig(&config) ||
      WebPGetFeatures(data.data(), data.size(), &config.input) != VP8_STATUS_OK) {
    return Status(Code::kUnsupportedMedia, "the image data is corrupt");
  }
  // The limits were checked on the sniffed size: libwebp must agree before any pixel is allocated.
  if (config.input.width != info.width || config.input.height != info.height ||
      config.input.has_animation) {
    return Status(Code::kUnsupportedMedia, "the WebP headers disagree about the image");
  }
  int width = info.width, height = info.height;
  if (shrink > 1) {
    width = std::max(1, (info.width + shrink - 1) / shrink);
    height = std::max(1, (info.height + shrink - 1) / shrink);
    config.options.use_scaling = 1;
    config.options.scaled_width = width;
    config.options.scaled_height = height;
  }
  // libwebp filters and converts rows on a second thread while the first decodes the next ones
  // (as libvips has it decode): a lone request's decode is shorter, and under load the two
  // threads share the cores with the other workers.
  config.options.use_threads = 1;
  cv::Mat img(height, width, config.input.has_alpha ? CV_8UC4 : CV_8UC3);
  config.output.colorspace = config.input.has_alpha ? MODE_BGRA : MODE_BGR;
  config.output.is_external_memory = 1;
  config.output.u.RGBA.rgba = img.data;
  config.output.u.RGBA.stride = static_cast<int>(img.step);
  config.output.u.RGBA.size = img.step * static_cast<std::size_t>(img.rows);
  const VP8StatusCode decoded = WebPDecode(data.data(), data.size(), &config);
  WebPFreeDecBuffer(&config.output);  // external memory: frees nothing but libwebp's bookkeeping
  if (decoded != VP8_STATUS_OK) return Status(Code::kUnsupportedMedia, "the image data is corrupt");
  return img;
}

}  // namespace

DecodeBudget decode_budget(const RenderSettings& settings, const Deadline& deadline) {
  return {deadline, settings.max_decoder_memory_bytes, settings.max_jpeg_scans,
          settings.color_management == "srgb"};
}

Result<cv::Mat> decode_image(std::span<const std::uint8_t> data, const ImageInfo& info, int shrink,
                             const DecodeBudget& budget) {
  if (budget.deadline.passed()) return deadline_passed();
  if (has_frames(info)) {  // GIF and animated WebP: the first frame
    Result<std::unique_ptr<FrameReader>> reader = open_frames(data, info, budget);
    if (!reader.ok()) return reader.status();
    int duration_ms = 0;
    return first_frame(**reader, duration_ms);
  }
  switch (info.format) {
    case ImageFormat::kWebp: return decode_webp(data, info, shrink);
    case ImageFormat::kPng: return decode_png(data, info, budget);
    case ImageFormat::kJpeg:
      // A progressive JPEG at 1/8 scale needs only its first scans (jpeg_dc.h).
      if (info.dc_eighth && shrink == 8) {
        if (std::optional<cv::Mat> dc =
                decode_progressive_dc(data, info.width, info.height, budget)) {
          return std::move(*dc);
        }
      }
      return decode_jpeg(data, info, shrink, budget);
    case ImageFormat::kHeic:
    case ImageFormat::kAvif: return decode_heif(data, info, shrink, budget);
    case ImageFormat::kGif: break;  // read as frames, above
  }
  return Status(Code::kUnsupportedMedia, "this image format cannot be decoded");
}

}  // namespace thimble::transform
