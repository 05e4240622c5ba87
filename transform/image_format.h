// ImageFormat: the image formats Thimble recognises, with their names and MIME types.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace thimble::transform {

enum class ImageFormat : std::uint8_t { kJpeg, kPng, kWebp, kGif, kHeic, kAvif };

constexpr std::string_view format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg: return "jpeg";
    case ImageFormat::kPng: return "png";
    case ImageFormat::kWebp: return "webp";
    case ImageFormat::kGif: return "gif";
    case ImageFormat::kHeic: return "heic";
    case ImageFormat::kAvif: return "avif";
  }
  return "jpeg";
}

constexpr std::string_view mime_type(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg: return "image/jpeg";
    case ImageFormat::kPng: return "image/png";
    case ImageFormat::kWebp: return "image/webp";
    case ImageFormat::kGif: return "image/gif";
    case ImageFormat::kHeic: return "image/heic";
    case ImageFormat::kAvif: return "image/avif";
  }
  return "application/octet-stream";
}

// Whether `format` can carry an animation.
constexpr bool animates(ImageFormat f) {
  return f == ImageFormat::kGif || f == ImageFormat::kWebp;
}

// Formats Thimble can write. HEIC is read-only: no browser but Safari shows it.
constexpr bool can_encode(ImageFormat f) {
  return f != ImageFormat::kHeic;
}

}  // namespace thimble::transform
