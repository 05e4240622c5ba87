// ImageFormat: the image formats Thimble recognises, with their names and MIME types.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace thimble::transform {

enum class ImageFormat : std::uint8_t { kJpeg, kPng, kWebp, kGif };

constexpr std::string_view format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg: return "jpeg";
    case ImageFormat::kPng: return "png";
    case ImageFormat::kWebp: return "webp";
    case ImageFormat::kGif: return "gif";
  }
  return "jpeg";
}

constexpr std::string_view mime_type(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg: return "image/jpeg";
    case ImageFormat::kPng: return "image/png";
    case ImageFormat::kWebp: return "image/webp";
    case ImageFormat::kGif: return "image/gif";
  }
  return "application/octet-stream";
}

// Formats Thimble can write. GIF is read-only (and not decodable with this OpenCV build).
constexpr bool can_encode(ImageFormat f) {
  return f != ImageFormat::kGif;
}

}  // namespace thimble::transform
