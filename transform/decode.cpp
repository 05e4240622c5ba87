#include "transform/decode.h"

#include <webp/decode.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "transform/jpeg_dc.h"

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
Result<cv::Mat> decode_webp(std::span<const std::uint8_t> data, const ImageInfo& info) {
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
  cv::Mat img(info.height, info.width, config.input.has_alpha ? CV_8UC4 : CV_8UC3);
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

Result<cv::Mat> decode_image(std::span<const std::uint8_t> data, const ImageInfo& info,
                             int shrink) {
  if (info.format == ImageFormat::kWebp) return decode_webp(data, info);
  // A progressive JPEG at 1/8 scale needs only its first scans (jpeg_dc.h).
  if (info.format == ImageFormat::kJpeg && info.dc_eighth && shrink == 8) {
    if (std::optional<cv::Mat> dc = decode_progressive_dc(data, info.width, info.height)) {
      return std::move(*dc);
    }
  }
  int flags = cv::IMREAD_UNCHANGED;  // keeps alpha; never applies EXIF orientation
  if (info.format == ImageFormat::kJpeg) {
    flags = cv::IMREAD_IGNORE_ORIENTATION | (shrink == 8   ? cv::IMREAD_REDUCED_COLOR_8
                                             : shrink == 4 ? cv::IMREAD_REDUCED_COLOR_4
                                             : shrink == 2 ? cv::IMREAD_REDUCED_COLOR_2
                                                           : cv::IMREAD_COLOR);
  }
  cv::Mat img;
  try {
    const cv::Mat buffer(1, static_cast<int>(data.size()), CV_8U,
                         const_cast<std::uint8_t*>(data.data()));
    img = cv::imdecode(buffer, flags);
  } catch (const cv::Exception&) {
    return Status(Code::kUnsupportedMedia, "the image cannot be decoded");
  }
  if (img.empty()) return Status(Code::kUnsupportedMedia, "the image data is corrupt");
  // Normalise to 8-bit BGR or BGRA.
  if (img.depth() == CV_16U) {
    img.convertTo(img, CV_8U, 1.0 / 257.0);
  } else if (img.depth() != CV_8U) {
    return Status(Code::kUnsupportedMedia, "unsupported sample format");
  }
  if (img.channels() == 1) {
    cv::cvtColor(img, img, cv::COLOR_GRAY2BGR);
  } else if (img.channels() == 2) {
    return Status(Code::kUnsupportedMedia, "unsupported channel layout");
  }
  return img;
}

}  // namespace thimble::transform
