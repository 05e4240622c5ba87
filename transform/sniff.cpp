#include "transform/sniff.h"

#include <algorithm>
#include <cstring>

#include "transform/heif_header.h"

namespace thimble::transform {
namespace {

using Bytes = std::span<const std::uint8_t>;

Status unsupported(std::string message) {
  return {Code::kUnsupportedMedia, std::move(message)};
}

std::uint32_t be16(Bytes d, std::size_t at) {
  return d[at] << 8 | d[at + 1];
}
std::uint32_t be32(Bytes d, std::size_t at) {
  return std::uint32_t{d[at]} << 24 | d[at + 1] << 16 | d[at + 2] << 8 | d[at + 3];
}
std::uint32_t le16(Bytes d, std::size_t at) {
  return d[at] | d[at + 1] << 8;
}
std::uint32_t le24(Bytes d, std::size_t at) {
  return d[at] | d[at + 1] << 8 | d[at + 2] << 16;
}
std::uint32_t le32(Bytes d, std::size_t at) {
  return d[at] | d[at + 1] << 8 | d[at + 2] << 16 | std::uint32_t{d[at + 3]} << 24;
}

bool starts_with(Bytes d, const char* magic, std::size_t at = 0) {
  std::size_t n = std::strlen(magic);
  return d.size() >= at + n && std::memcmp(d.data() + at, magic, n) == 0;
}

// Whether libjpeg decodes every component of this frame header (SOF2) at 1/8 scale with a 1x1 or
// a 2x2 transform, which jpeg_dc.h computes from DC coefficients: it doubles a component's
// transform when the maximum sampling factors are multiples of twice the component's on both axes
// (4:2:0 chroma: 2x2), and doubles it again at four times (4x4, left to the ordinary decode).
bool eighth_needs_only_dc(Bytes frame) {
  const std::size_t components = frame.size() > 5 ? frame[5] : 0;
  if (components == 0 || frame.size() < 6 + 3 * components) return false;
  int max_h = 1, max_v = 1;
  for (std::size_t c = 0; c < components; ++c) {
    max_h = std::max(max_h, frame[6 + 3 * c + 1] >> 4);
    max_v = std::max(max_v, frame[6 + 3 * c + 1] & 15);
  }
  for (std::size_t c = 0; c < components; ++c) {
    const int h = frame[6 + 3 * c + 1] >> 4, v = frame[6 + 3 * c + 1] & 15;
    if (h == 0 || v == 0) return false;
    if (max_h % (4 * h) == 0 && max_v % (4 * v) == 0) return false;
  }
  return true;
}

Result<ImageInfo> sniff_jpeg(Bytes d) {
  ImageInfo info;
  info.format = ImageFormat::kJpeg;
  std::size_t i = 2;  // after SOI
  while (true) {
    // The next marker, found the way libjpeg's next_marker() finds it, so that both read the same
    // frame: bytes other than 0xFF are skipped as junk, then any 0xFF fill bytes; 0xFF 0x00 is
    // junk too (a stuffed zero), never a marker with a length.
    std::uint8_t marker = 0;
    do {
      while (i < d.size() && d[i] != 0xFF) ++i;
      while (i < d.size() && d[i] == 0xFF) ++i;
      if (i >= d.size()) return unsupported("truncated JPEG header");
      marker = d[i++];
    } while (marker == 0x00);
    switch (marker) {
      case 0x01:  // TEM
      case 0xD0:
      case 0xD1:
      case 0xD2:
      case 0xD3:  // RSTn
      case 0xD4:
      case 0xD5:
      case 0xD6:
      case 0xD7: continue;  // no length
      case 0xD8: return unsupported("JPEG with a second start of image");
      case 0xD9:
      case 0xDA: return unsupported("JPEG without a frame header");
      case 0xC3:
      case 0xC5:
      case 0xC6:
      case 0xC7:
      case 0xCB:
      case 0xCD:
      case 0xCE:
      case 0xCF: return unsupported("lossless or hierarchical JPEG is not supported");
      default: break;
    }
    // SOF0/1/2 (Huffman) and SOF9/10 (arithmetic) are frames libjpeg decodes. DHT, DAC, DQT, DNL,
    // DRI, APPn and COM have a length and are skipped; libjpeg refuses any other marker.
    const bool is_sof =
        marker == 0xC0 || marker == 0xC1 || marker == 0xC2 || marker == 0xC9 || marker == 0xCA;
    const bool skipped = marker == 0xC4 || marker == 0xCC || (marker >= 0xDB && marker <= 0xDD) ||
                         (marker >= 0xE0 && marker <= 0xEF) || marker == 0xFE;
    if (!is_sof && !skipped) return unsupported("JPEG with an unknown marker");
    if (i + 2 > d.size()) return unsupported("truncated JPEG header");
    std::size_t length = be16(d, i);
    if (length < 2 || i + length > d.size()) return unsupported("truncated JPEG header");
    Bytes segment = d.subspan(i + 2, length - 2);
    // APP1 "Exif\0\0" + TIFF: the orientation. (The two NULs are checked by hand.)
    if (marker == 0xE1 && starts_with(segment, "Exif") && segment.size() > 6 && segment[4] == 0 &&
        segment[5] == 0) {
      info.orientation = exif_orientation(segment.subspan(6));
    }
    if (is_sof) {
      if (segment.size() < 6) return unsupported("truncated JPEG frame header");
      info.height = static_cast<int>(be16(segment, 1));
      info.width = static_cast<int>(be16(segment, 3));
      info.progressive = marker == 0xC2 || marker == 0xCA;
      info.cmyk = segment[5] == 4;
      info.grey = segment[5] == 1;
      if (info.width == 0 || info.height == 0) {
        return unsupported("JPEG with zero or deferred (DNL) dimensions");
      }
      info.dc_eighth = marker == 0xC2 && eighth_needs_only_dc(segment);
      return info;
    }
    i += length;
  }
}

Result<ImageInfo> sniff_png(Bytes d) {
  ImageInfo info;
  info.format = ImageFormat::kPng;
  // Signature (8), then IHDR: length (4) "IHDR" (4) width (4) height (4) depth (1) colour (1).
  if (d.size() < 8 + 8 + 13 || !starts_with(d, "IHDR", 12)) {
    return unsupported("truncated PNG header");
  }
  std::uint32_t width = be32(d, 16), height = be32(d, 20);
  if (width == 0 || height == 0 || width > 0x7fffffff || height > 0x7fffffff) {
    return unsupported("PNG with invalid dimensions");
  }
  info.width = static_cast<int>(width);
  info.height = static_cast<int>(height);
  std::uint8_t colour = d[25];
  info.has_alpha = colour == 4 || colour == 6;
  info.grey = colour == 0 || colour == 4;
  // Walk the chunks before the image data for transparency and an EXIF orientation.
  std::size_t i = 8;
  while (i + 12 <= d.size()) {
    std::uint32_t length = be32(d, i);
    if (length > d.size() - i - 12) break;
    Bytes type = d.subspan(i + 4, 4);
    if (starts_with(type, "IDAT") || starts_with(type, "IEND")) break;
    if (starts_with(type, "tRNS")) info.has_alpha = true;
    if (starts_with(type, "acTL")) info.animated = true;
    if (starts_with(type, "eXIf")) info.orientation = exif_orientation(d.subspan(i + 8, length));
    i += 12 + length;
  }
  return info;
}

Result<ImageInfo> sniff_webp(Bytes d) {
  ImageInfo info;
  info.format = ImageFormat::kWebp;
  info.frames = 0;  // ANMF chunks counted below
  bool have_size = false;
  // RIFF container: "RIFF" size "WEBP", then chunks: fourcc (4) size (4) payload (padded to even).
  std::size_t i = 12;
  while (i + 8 <= d.size()) {
    Bytes fourcc = d.subspan(i, 4);
    std::uint32_t size = le32(d, i + 4);
    if (size > d.size() - i - 8) size = static_cast<std::uint32_t>(d.size() - i - 8);
    Bytes payload = d.subspan(i + 8, size);
    if (starts_with(fourcc, "VP8X") && payload.size() >= 10) {
      info.has_alpha = payload[0] & 0x10;
      info.animated = payload[0] & 0x02;
      info.width = static_cast<int>(le24(payload, 4) + 1);
      info.height = static_cast<int>(le24(payload, 7) + 1);
      have_size = true;
    } else if (starts_with(fourcc, "VP8 ") && payload.size() >= 10 && !have_size) {
      // Frame tag (3), start code 9d 01 2a, then 14-bit width and height.
      if (payload[3] != 0x9d || payload[4] != 0x01 || payload[5] != 0x2a) {
        return unsupported("corrupt WebP (VP8) header");
      }
      info.width = static_cast<int>(le16(payload, 6) & 0x3fff);
      info.height = static_cast<int>(le16(payload, 8) & 0x3fff);
      have_size = true;
    } else if (starts_with(fourcc, "VP8L") && payload.size() >= 5 && !have_size) {
      if (payload[0] != 0x2f) return unsupported("corrupt WebP (VP8L) header");
      std::uint32_t bits = le32(payload, 1);
      info.width = static_cast<int>((bits & 0x3fff) + 1);
      info.height = static_cast<int>((bits >> 14 & 0x3fff) + 1);
      info.has_alpha = bits >> 28 & 1;
      have_size = true;
    } else if (starts_with(fourcc, "ANIM") && payload.size() >= 6) {
      info.loop_count = static_cast<int>(le16(payload, 4));
    } else if (starts_with(fourcc, "ANMF")) {
      ++info.frames;
    } else if (starts_with(fourcc, "EXIF")) {
      Bytes tiff = payload;
      if (starts_with(tiff, "Exif") && tiff.size() > 6) tiff = tiff.subspan(6);
      info.orientation = exif_orientation(tiff);
    }
    i += 8 + size + (size & 1);
  }
  if (!have_size || info.width == 0 || info.height == 0) {
    return unsupported("truncated WebP header");
  }
  if (info.animated) {
    if (info.frames == 0) return unsupported("animated WebP without frames");
  } else {
    info.frames = 1;
  }
  return info;
}

// GIF: the logical screen, then every block up to the trailer, for the frame count and the loop
// count (NETSCAPE2.0). Sub-blocks are skipped by their lengths; nothing is decompressed. A file
// cut short keeps the frames that are whole.
Result<ImageInfo> sniff_gif(Bytes d) {
  if (d.size() < 13) return unsupported("truncated GIF header");
  ImageInfo info;
  info.format = ImageFormat::kGif;
  info.width = static_cast<int>(le16(d, 6));
  info.height = static_cast<int>(le16(d, 8));
  if (info.width == 0 || info.height == 0) return unsupported("GIF with no size");
  std::size_t i = 13;
  if (d[10] & 0x80) i += 3u << ((d[10] & 7) + 1);  // global colour table
  // Skips data sub-blocks from `i`; false when the file ends first.
  auto skip_blocks = [&] {
    while (i < d.size()) {
      const std::size_t n = d[i++];
      if (n == 0) return true;
      i += n;
    }
    return false;
  };
  int frames = 0;
  bool transparent = false;
  while (i < d.size() && d[i] != 0x3B) {
    if (d[i] == 0x21) {  // extension: label, then sub-blocks
      if (i + 2 >= d.size()) break;
      const std::uint8_t label = d[i + 1];
      if (label == 0xF9 && i + 3 < d.size() && d[i + 2] >= 4 && i + 4 < d.size()) {
        transparent = transparent || (d[i + 3] & 1);
      }
      if (label == 0xFF && i + 18 < d.size() && d[i + 2] == 11 &&
          std::memcmp(d.data() + i + 3, "NETSCAPE2.0", 11) == 0 && d[i + 14] >= 3 &&
          d[i + 15] == 1) {
        info.loop_count = static_cast<int>(le16(d, i + 16));
      }
      i += 2;
      if (!skip_blocks()) break;
    } else if (d[i] == 0x2C) {  // image: descriptor (10), local colour table, LZW size, data
      if (i + 10 > d.size()) break;
      const std::uint8_t packed = d[i + 9];
      i += 10;
      if (packed & 0x80) i += 3u << ((packed & 7) + 1);
      i += 1;  // LZW minimum code size
      if (i > d.size() || !skip_blocks()) break;
      ++frames;
    } else {
      return unsupported("GIF with an unknown block");
    }
  }
  if (frames == 0) return unsupported("truncated GIF: no whole frame");
  info.frames = frames;
  info.animated = frames > 1;
  info.has_alpha = transparent;
  return info;
}

}  // namespace

int exif_orientation(Bytes tiff) {
  if (tiff.size() < 8) return 1;
  bool little = starts_with(tiff, "II");
  if (!little && !starts_with(tiff, "MM")) return 1;
  auto u16 = [&](std::size_t at) { return little ? le16(tiff, at) : be16(tiff, at); };
  auto u32 = [&](std::size_t at) { return little ? le32(tiff, at) : be32(tiff, at); };
  if (u16(2) != 42) return 1;
  std::uint32_t ifd = u32(4);
  if (ifd < 8 || ifd > tiff.size() - 2) return 1;
  std::uint32_t entries = u16(ifd);
  for (std::uint32_t e = 0; e < entries; ++e) {
    std::size_t at = ifd + 2 + std::size_t{e} * 12;
    if (at + 12 > tiff.size()) return 1;
    if (u16(at) == 0x0112) {  // Orientation, SHORT, count 1, value inline
      if (u16(at + 2) != 3) return 1;
      std::uint32_t value = u16(at + 8);
      return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
    }
  }
  return 1;
}

Result<ImageInfo> sniff(Bytes d) {
  if (d.empty()) return unsupported("the source is empty");
  if (d.size() >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return sniff_jpeg(d);
  if (starts_with(d, "\x89PNG\r\n\x1a\n")) return sniff_png(d);
  if (starts_with(d, "RIFF") && starts_with(d, "WEBP", 8)) return sniff_webp(d);
  if (starts_with(d, "GIF87a") || starts_with(d, "GIF89a")) return sniff_gif(d);
  if (looks_like_heif(d)) {
    Result<HeifHeader> heif = read_heif_header(d);
    if (!heif.ok()) return heif.status();
    ImageInfo info;
    info.format = heif->format;
    info.width = heif->width;
    info.height = heif->height;
    info.orientation = heif->orientation;  // irot and imir; an EXIF orientation never applies
    info.has_alpha = heif->has_alpha;
    if (heif->coded_width != heif->width || heif->coded_height != heif->height) {
      info.coded_width = heif->coded_width;
      info.coded_height = heif->coded_height;
    }
    if (!heif->has_alpha) {  // a thumbnail item's own alpha is not looked for
      info.thumbnail_width = heif->thumbnail_width;
      info.thumbnail_height = heif->thumbnail_height;
    }
    return info;
  }
  return unsupported("not a JPEG, PNG, WebP, GIF, HEIC or AVIF image");
}

}  // namespace thimble::transform
